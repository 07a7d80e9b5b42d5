"""Schema histories per capability, and databases made by the former single chain.

``tests/legacy_migrations`` holds the revision files of that chain (0001..0007, table
alembic_version) as they were: the legacy databases here are made by them, so what is
upgraded is what the old code left behind.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from strato import db
from strato.app import create_app
from strato.auth import IdentityStore, Scope
from strato.catalog.demo.generator import generate_items
from strato.catalog.ingest.apply import apply_events
from strato.catalog.model.events import create_event
from strato.catalog.store import ItemStore
from strato.context import Context
from strato.data.datasets.registry import DatasetRegistry
from strato.db import migrate
from strato.settings import LogSettings, Settings

LEGACY_VERSIONS = Path(__file__).parent / "legacy_migrations"
WHO = {"client_id": "test", "iss": "https://test.example", "sub": "test"}
HEADS = {
    "core": "core_0002",
    "data": "data_0002",
    "catalog": "catalog_0003",
    "jobs": "jobs_0002",
    "pipelines": "pipelines_0002",
}


def make_legacy(engine: sa.Engine, revision: str) -> None:
    """What the former code's `strato db upgrade` made, up to ``revision``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("strato") / "migrations"))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", str(LEGACY_VERSIONS))
    cfg.attributes["engine"] = engine
    cfg.attributes["version_table"] = "alembic_version"
    command.upgrade(cfg, revision)


def fill_legacy(engine: sa.Engine, revision: str) -> None:
    """Rows as the former code wrote them, in the tables ``revision`` had."""
    now = datetime(2024, 1, 1)
    with engine.begin() as conn:
        conn.execute(
            sa.table(
                "users", *(sa.column(n) for n in ("name", "scopes", "is_active", "created_at"))
            ).insert(),
            {"name": "alice", "scopes": "read,publish", "is_active": True, "created_at": now},
        )
        if revision >= "0002":
            conn.execute(
                sa.table(
                    "datasets",
                    sa.column("id"),
                    sa.column("title"),
                    sa.column("sources", sa.JSON()),
                    sa.column("options", sa.JSON()),
                    sa.column("created_at"),
                    sa.column("updated_at"),
                ).insert(),
                {
                    "id": "tas",
                    "title": "Surface air temperature",
                    "sources": ["/nowhere/tas.nc"],
                    "options": {},
                    "created_at": now,
                    "updated_at": now,
                },
            )
        if revision >= "0003":
            conn.execute(
                sa.table(
                    "catalog_collections",
                    sa.column("id"),
                    sa.column("content", sa.JSON()),
                    sa.column("updated_at"),
                ).insert(),
                {"id": "kept", "content": {"id": "kept", "type": "Collection"}, "updated_at": now},
            )


def tables(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names())


def check_upgraded(engine: sa.Engine, revision: str) -> None:
    assert db.current_revision(engine) == db.head_revision(engine)
    assert migrate.revisions(engine) == list(HEADS.values())
    assert "alembic_version" not in tables(engine)
    sessions = db.session_factory(engine)
    # The legacy rows are there and the code of today works on them and beside them.
    identities = IdentityStore(sessions)
    assert [u.name for u in identities.list_users()] == ["alice"]
    parent = identities.create_token("alice", {Scope.READ, Scope.PUBLISH})
    minted = identities.create_token("alice", {Scope.READ}, parent=parent.info.id)
    assert list(identities.revoke_token(parent.info.id).derived) == [minted.info.id]
    registered = [r.id for r in DatasetRegistry(sessions, [Path("/")]).all()]
    assert registered == (["tas"] if revision >= "0002" else [])
    store = ItemStore(sessions)
    [item] = generate_items(1, seed=5)
    apply_events(store, [create_event("CMIP6", item, requester=WHO)])
    assert store.get_item("CMIP6", item["id"])["id"] == item["id"]
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT id FROM catalog_collections WHERE id = 'kept'"))
        assert [row[0] for row in kept] == (["kept"] if revision >= "0003" else [])


LEGACY_CASES = [
    *(("sqlite", f"{n:04d}") for n in range(1, 8)),
    *((server, rev) for server in ("postgresql", "mariadb") for rev in ("0004", "0007")),
]


@pytest.mark.parametrize(
    ("database_url", "revision"),
    LEGACY_CASES,
    indirect=["database_url"],
    ids=[f"{server}-{rev}" for server, rev in LEGACY_CASES],
)
def test_a_database_of_the_former_chain_is_adopted_and_upgraded(
    database_url: str, revision: str
) -> None:
    engine = db.create_engine(database_url)
    make_legacy(engine, revision)
    fill_legacy(engine, revision)
    assert tables(engine) >= {"alembic_version", "users"}

    db.upgrade(engine)
    check_upgraded(engine, revision)
    db.upgrade(engine)  # again: nothing left to do
    assert migrate.revisions(engine) == list(HEADS.values())
    engine.dispose()


def test_an_adopted_database_serves(tmp_path: Path, serve: Callable[[Any], str]) -> None:
    settings = Settings(data_dir=tmp_path / "data", log=LogSettings(access=False))
    engine = db.create_engine(settings.database_url_value)
    make_legacy(engine, "0007")
    fill_legacy(engine, "0007")
    engine.dispose()
    ctx = Context.open(settings)
    try:
        ctx.migrate()
        with httpx.Client(base_url=serve(create_app(settings, context=ctx)), timeout=30) as c:
            ready = c.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["schema"] == " ".join(HEADS.values())
            assert c.get("/datasets").status_code == 200
            assert c.get("/stac/collections/kept").json()["id"] == "kept"
    finally:
        ctx.close()


def test_a_switched_off_capability_is_stamped_from_the_former_chain_not_migrated(
    tmp_path: Path,
) -> None:
    off = Settings(data_dir=tmp_path, capabilities={"disabled": ["catalog"]})
    engine = db.create_engine(off.database_url_value)
    make_legacy(engine, "0004")
    ctx = Context.open(off)
    ctx.migrate()
    # What the former chain made is recorded (catalog_0002), but not brought further.
    assert migrate.revisions(engine) == [
        "core_0002",
        "data_0002",
        "catalog_0002",
        "jobs_0002",
        "pipelines_0002",
    ]
    assert ctx.schema() == ctx.schema_head() == "core_0002 data_0002 jobs_0002 pipelines_0002"
    with engine.connect() as conn:
        assert "catalog_value_words" not in sa.inspect(conn).get_table_names()
    # Switched on again, it goes on from where the former chain left it.
    on = Context.open(Settings(data_dir=tmp_path))
    on.migrate()
    assert migrate.revisions(engine) == list(HEADS.values())
    on.close()
    ctx.close()
    engine.dispose()


def test_a_switched_off_capability_gets_no_tables(tmp_path: Path) -> None:
    ctx = Context.open(Settings(data_dir=tmp_path, capabilities={"disabled": ["catalog"]}))
    ctx.migrate()
    found = tables(ctx.engine)
    assert {"users", "datasets", "alembic_version_core", "alembic_version_data"} <= found
    assert not {t for t in found if t.startswith("catalog") or t.endswith("_catalog")}
    ctx.close()


def test_a_database_of_an_unknown_newer_chain_is_refused(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite:///{tmp_path / 'new.db'}")
    make_legacy(engine, "0007")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0008'"))
    with pytest.raises(Exception, match="0008"):
        db.upgrade(engine)
    assert "alembic_version" in tables(engine)
    engine.dispose()
