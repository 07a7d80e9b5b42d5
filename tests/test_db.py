"""Migrations and the identity store on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Column, DateTime, MetaData, Table, insert, inspect, select, update
from sqlalchemy.exc import StatementError

from strato import db
from strato.auth import ApiToken, IdentityStore, Scope
from strato.errors import Conflict, Forbidden, NotFound, Unauthorized


@pytest.fixture
def store(database_url: str) -> IdentityStore:
    engine = db.create_engine(database_url)
    db.upgrade(engine)
    return IdentityStore(db.session_factory(engine))


def test_upgrade_creates_schema_and_is_idempotent(database_url: str) -> None:
    engine = db.create_engine(database_url)
    assert db.current_revision(engine) is None
    db.upgrade(engine)
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision(engine)
    assert {"users", "api_tokens"} <= set(inspect(engine).get_table_names())


def test_user_with_password_signs_in_and_duplicates_conflict(store: IdentityStore) -> None:
    store.create_user("alice", password="correct horse", scopes={Scope.READ, Scope.PUBLISH})
    principal = store.authenticate_basic("alice", "correct horse")
    assert principal.user == "alice"
    assert principal.scopes == {Scope.READ, Scope.PUBLISH}
    with pytest.raises(Unauthorized):
        store.authenticate_basic("alice", "wrong horse")
    with pytest.raises(Unauthorized):
        store.authenticate_basic("nobody", "correct horse")
    with pytest.raises(Conflict, match="alice"):
        store.create_user("alice")


def test_tokens_authenticate_until_revoked_or_expired(store: IdentityStore) -> None:
    store.create_user("bob", scopes={Scope.READ, Scope.RUN})
    issued = store.create_token("bob", {Scope.RUN}, expires_in=timedelta(days=30), name="ci")
    assert issued.info.expires_at is not None
    assert issued.info.expires_at.tzinfo is UTC
    assert store.authenticate_token(issued.secret).scopes == {Scope.RUN}
    assert store.authenticate_basic("bob", issued.secret).user == "bob"

    [listed] = store.list_tokens("bob")
    assert listed.id == issued.info.id
    assert listed.last_used_at is not None

    store.revoke_token(issued.info.id)
    with pytest.raises(Unauthorized, match="revoked"):
        store.authenticate_token(issued.secret)

    other = store.create_token("bob", {Scope.READ})
    with store._sessions.begin() as s:
        s.execute(
            update(ApiToken)
            .where(ApiToken.id == other.info.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    with pytest.raises(Unauthorized, match="expired"):
        store.authenticate_token(other.secret)


def test_only_the_hash_of_a_token_is_stored(store: IdentityStore) -> None:
    store.create_user("carol")
    issued = store.create_token("carol", {Scope.READ})
    with store._sessions() as s:
        row = s.scalar(select(ApiToken))
        assert row is not None
        stored = " ".join(str(getattr(row, c.key)) for c in ApiToken.__table__.columns)
    assert issued.secret not in stored
    assert len(issued.secret) >= 43


def test_token_scopes_are_bounded_by_the_users(store: IdentityStore) -> None:
    store.create_user("dave", scopes={Scope.READ})
    with pytest.raises(Forbidden, match="publish"):
        store.create_token("dave", {Scope.PUBLISH})
    with pytest.raises(NotFound):
        store.create_token("erin", {Scope.READ})


def test_disabled_user_loses_access(store: IdentityStore) -> None:
    store.create_user("frank", password="long enough")
    issued = store.create_token("frank", {Scope.READ})
    store.set_active("frank", False)
    with pytest.raises(Unauthorized, match="disabled"):
        store.authenticate_token(issued.secret)
    with pytest.raises(Unauthorized, match="disabled"):
        store.authenticate_basic("frank", "long enough")


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2020, 1, 2, 3, 4, 5, 678, tzinfo=UTC),
        datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2020, 1, 2, 4, 4, 5, tzinfo=timezone(timedelta(hours=1))),
    ],
)
def test_utc_datetimes_are_stored_on_sqlite_as_sqlalchemy_stores_datetimes(
    tmp_path: Path, moment: datetime
) -> None:
    # strato's own SQLite bind for UTC columns must write the very text SQLAlchemy's
    # DateTime writes: rows written before and after it are compared and sorted together.
    engine = db.create_engine(f"sqlite:///{tmp_path / 'times.db'}")
    times = Table(
        "times", MetaData(), Column("ours", db.UTCDateTime()), Column("plain", DateTime())
    )
    times.create(engine)
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        conn.execute(insert(times), [{"ours": moment, "plain": naive}])
        ours, plain = conn.exec_driver_sql("SELECT ours, plain FROM times").one()
        assert ours == plain
        assert conn.execute(select(times.c.ours)).scalar_one() == moment
    with pytest.raises(StatementError, match="naive datetime"), engine.begin() as conn:
        conn.execute(insert(times), [{"ours": naive}])


def test_sqlite_checkpoints_after_the_same_amount_of_log_whatever_its_page_size(
    tmp_path: Path,
) -> None:
    old = tmp_path / "old.db"
    made = sqlite3.connect(old)  # made before strato, with SQLite's 4 KiB pages
    made.execute("PRAGMA page_size=4096")
    made.execute("CREATE TABLE t (x)")
    made.close()
    for path, page_size in ((tmp_path / "new.db", 16384), (old, 4096)):
        engine = db.create_engine(f"sqlite:///{path}")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA page_size").scalar() == page_size
            pages = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
            assert pages * page_size == db.WAL_CHECKPOINT_BYTES
        engine.dispose()


@pytest.mark.parametrize("server", ["postgresql", "mariadb"])
def test_a_missing_database_is_created_once(server: str) -> None:
    """What `strato playground up --database-url` relies on: each node's database is
    created on its server when it does not exist yet."""
    import secrets

    from tests.conftest import MARIADB, PG, need_service

    need_service(*(PG if server == "postgresql" else MARIADB))
    name = f"strato_created_{secrets.token_hex(4)}"
    url = (
        f"postgresql://postgres@127.0.0.1:5432/{name}"
        if server == "postgresql"
        else f"mysql://root@127.0.0.1:3306/{name}"
    )
    try:
        assert db.create_database_if_missing(url) is True
        assert db.create_database_if_missing(url) is False
        engine = db.create_engine(url)
        db.upgrade(engine)
        assert db.current_revision(engine) == db.head_revision(engine)
        engine.dispose()
    finally:
        db.drop_database(url)
    assert db.create_database_if_missing(f"sqlite:////nowhere/{name}.db") is False
