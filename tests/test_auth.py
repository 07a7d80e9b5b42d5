from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select

from strato import db
from strato.auth import ApiToken, IdentityStore, Scope, parse_duration, parse_scopes
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


def _lock_token_rows(engine: Engine, token_id: str) -> Connection:
    """Another writer: holds the lock a last-use update would need, until closed."""
    conn = engine.connect()
    if engine.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.execute(select(ApiToken).where(ApiToken.id == token_id).with_for_update())
    return conn


def test_token_use_never_waits_for_a_lock(database_url: str) -> None:
    engine = db.create_engine(database_url)
    db.upgrade(engine)
    store = IdentityStore(db.session_factory(engine))
    store.create_user("rita", scopes={Scope.READ})
    issued = store.create_token("rita", {Scope.READ})
    holder = _lock_token_rows(engine, issued.info.id)
    result: list[Any] = []
    try:
        worker = threading.Thread(
            target=lambda: result.append(store.authenticate_token(issued.secret)), daemon=True
        )
        worker.start()
        # Far below any lock wait of the engines (SQLite 30 s, PostgreSQL for ever,
        # MariaDB 50 s): authentication that waited for the writer would not be done.
        worker.join(timeout=10)
        assert result, "authentication waited for another writer's lock"
        assert result[0].user == "rita"
    finally:
        holder.rollback()
        holder.close()
    assert store.list_tokens("rita")[0].last_used_at is None  # skipped, not waited for
    store.authenticate_token(issued.secret)
    assert store.list_tokens("rita")[0].last_used_at is not None
    engine.dispose()
