"""Failed password checks are limited per user and per address, in bounded memory,
before any argon2 work."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.security import HTTPBasicCredentials

from strato.auth import IdentityStore
from strato.context import Context
from strato.errors import TooManyRequests, Unauthorized
from strato.http.security import Authenticator
from strato.http.signin_limits import SignInLimits
from strato.settings import AuthSettings


class CountingHasher(PasswordHasher):
    """argon2 as ever, counting the password checks it does."""

    checks = 0

    def verify(self, hash: Any, password: Any) -> bool:
        CountingHasher.checks += 1
        return super().verify(hash, password)


def test_refused_attempts_cost_no_password_check(context: Context) -> None:
    store = IdentityStore(context.sessions, hasher=CountingHasher())
    store.create_user("xena", password="xena-password")
    auth = Authenticator(store, AuthSettings(failures_per_user=2, failures_per_address=100))
    wrong = HTTPBasicCredentials(username="xena", password="wrong-pass")
    for _ in range(2):
        with pytest.raises(Unauthorized):
            auth.principal(None, wrong, "192.0.2.1")
    checked = CountingHasher.checks
    for _ in range(20):
        with pytest.raises(TooManyRequests) as caught:
            auth.principal(None, wrong, "192.0.2.1")
        assert caught.value.retry_after is not None
    assert CountingHasher.checks == checked


def test_the_tables_stay_bounded_under_many_names_and_addresses() -> None:
    now = [1000.0]
    limits = SignInLimits(
        AuthSettings(failures_per_user=3, failures_per_address=3, failure_tracking=100),
        clock=lambda: now[0],
    )
    # One attacker address, then many: the tables never exceed their bound.
    for _ in range(2):
        limits.failed("target", "198.51.100.7")
    for i in range(50_000):
        limits.failed(
            f"name-{i}", "198.51.100.7" if i % 2 else f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"
        )
        assert len(limits.users) <= 100
        assert len(limits.addresses) <= 100
    # The spraying address was failing all along: it is still known and refused.
    with pytest.raises(TooManyRequests, match=r"198\.51\.100\.7"):
        limits.check("anyone", "198.51.100.7")
    # After the window, it may try again.
    now[0] += 61
    limits.check("anyone", "198.51.100.7")
