from __future__ import annotations

from datetime import timedelta

import pytest

from strato.auth import Scope, parse_duration, parse_scopes
from strato.context import Context
from strato.errors import InvalidInput


def test_scopes_parse_and_unknown_ones_are_named() -> None:
    assert parse_scopes("read, publish") == {Scope.READ, Scope.PUBLISH}
    with pytest.raises(InvalidInput, match=r"'wirte'.*valid scopes: read, publish"):
        parse_scopes("read,wirte")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("never", None),
    ],
)
def test_durations(text: str, expected: timedelta | None) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["30", "0d", "1y", "-3d", "soon"])
def test_bad_durations_say_the_valid_forms(text: str) -> None:
    with pytest.raises(InvalidInput, match="30d, 12h, 90m"):
        parse_duration(text)


def test_passwords_are_hashed_with_argon2id(context: Context) -> None:
    context.identities.create_user("gina", password="s3cret-pass")
    with context.sessions() as s:
        from sqlalchemy import select

        from strato.auth import User

        stored = s.scalar(select(User.password_hash).where(User.name == "gina"))
    assert stored is not None
    assert stored.startswith("$argon2id$")


def test_short_password_is_refused(context: Context) -> None:
    with pytest.raises(InvalidInput, match="shorter than 8"):
        context.identities.create_user("hal", password="short")
