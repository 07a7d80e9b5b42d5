"""Tokens checked lately are trusted for ``auth.token_cache_seconds`` without a database
query: revocation and disabling in the same process take effect at once, elsewhere
(another server process, the command line) within that time; expiry always."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from strato.auth import ApiToken, IdentityStore, Scope, hash_token
from strato.context import Context
from strato.errors import Unauthorized


def _store(context: Context, seconds: float) -> IdentityStore:
    """Another process's view of the same database (a second server, the CLI)."""
    return IdentityStore(context.sessions, token_cache_seconds=seconds)


@pytest.fixture
def here(context: Context) -> IdentityStore:
    return _store(context, 30.0)


def test_a_cached_token_answers_exactly_what_the_database_answers(
    context: Context, here: IdentityStore
) -> None:
    here.create_user("ann", scopes=[Scope.READ, Scope.PROCESS])
    secret = here.create_token("ann", [Scope.PROCESS]).secret
    uncached = _store(context, 0).authenticate_token(secret)
    assert here.cached_token(secret) is None  # not checked yet
    assert here.authenticate_token(secret) == uncached
    assert here.cached_token(secret) == uncached
    assert here.authenticate_token(secret) == uncached


def test_revoking_a_token_here_is_seen_at_once_with_the_tokens_it_minted(
    here: IdentityStore,
) -> None:
    here.create_user("bo", scopes=[Scope.READ, Scope.PROCESS])
    parent = here.create_token("bo", [Scope.PROCESS])
    child = here.create_token("bo", [Scope.PROCESS], parent=parent.info.id)
    for issued in (parent, child):
        here.authenticate_token(issued.secret)
    here.revoke_token(parent.info.id)
    for issued in (parent, child):
        assert here.cached_token(issued.secret) is None
        with pytest.raises(Unauthorized, match="revoked"):
            here.authenticate_token(issued.secret)


def test_disabling_a_user_here_is_seen_at_once(here: IdentityStore) -> None:
    here.create_user("cy", scopes=[Scope.READ])
    secret = here.create_token("cy", [Scope.READ]).secret
    here.authenticate_token(secret)
    here.set_active("cy", False)
    with pytest.raises(Unauthorized, match="disabled"):
        here.authenticate_token(secret)


def test_a_revocation_elsewhere_is_seen_once_the_entry_ages_out(context: Context) -> None:
    here = _store(context, 0.3)
    elsewhere = _store(context, 0.3)
    here.create_user("di", scopes=[Scope.READ])
    issued = here.create_token("di", [Scope.READ])
    here.authenticate_token(issued.secret)
    elsewhere.revoke_token(issued.info.id)
    # Trusted until the entry is token_cache_seconds old: the documented window.
    assert here.authenticate_token(issued.secret).user == "di"
    time.sleep(0.35)
    with pytest.raises(Unauthorized, match="revoked"):
        here.authenticate_token(issued.secret)


def test_without_the_cache_a_revocation_elsewhere_is_seen_at_once(context: Context) -> None:
    here = _store(context, 0)
    here.create_user("ed", scopes=[Scope.READ])
    issued = here.create_token("ed", [Scope.READ])
    here.authenticate_token(issued.secret)
    _store(context, 0).revoke_token(issued.info.id)
    with pytest.raises(Unauthorized, match="revoked"):
        here.authenticate_token(issued.secret)


def test_a_cached_token_that_expires_is_refused_at_its_expiry(
    context: Context, here: IdentityStore
) -> None:
    here.create_user("flo", scopes=[Scope.READ])
    issued = here.create_token("flo", [Scope.READ], expires_in=timedelta(seconds=1))
    here.authenticate_token(issued.secret)
    assert here.cached_token(issued.secret) is not None
    time.sleep(1.05)
    assert here.cached_token(issued.secret) is None
    with pytest.raises(Unauthorized, match="expired"):
        here.authenticate_token(issued.secret)


def test_a_token_whose_use_is_due_to_be_recorded_goes_to_the_database(
    context: Context, here: IdentityStore
) -> None:
    here.create_user("gus", scopes=[Scope.READ])
    issued = here.create_token("gus", [Scope.READ])
    here.authenticate_token(issued.secret)
    assert here.cached_token(issued.secret) is not None
    # The last use as recorded an hour ago (what a token idle for an hour has): the
    # cache does not hide that it is used again.
    cached = here.tokens.get(hash_token(issued.secret))
    assert cached is not None
    cached.last_used_at = cached.last_used_at - timedelta(hours=1)  # type: ignore[operator]
    assert here.cached_token(issued.secret) is None
    with context.sessions.begin() as s:
        s.execute(update(ApiToken).values(last_used_at=None))
    here.authenticate_token(issued.secret)
    assert [t.last_used_at is not None for t in here.list_tokens("gus")] == [True]
