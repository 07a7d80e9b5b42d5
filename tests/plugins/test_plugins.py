"""A bus backend and a database dialect from another distribution, found through the
real entry-point path: a ``*.dist-info`` directory with an ``entry_points.txt`` on
``sys.path``, as ``pip install`` would leave it, which importlib.metadata reads."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect

from strato import db
from strato.bus import open_bus
from strato.catalog.demo.generator import generate_items
from strato.catalog.ingest.apply import apply_events
from strato.catalog.model.events import create_event
from strato.catalog.search.search import CatalogSearch, SearchRequest
from strato.catalog.store import ItemStore
from strato.db.dialects import forget
from strato.errors import InvalidInput

PLUGINS = Path(__file__).with_name("strato_test_plugins.py")
ENTRY_POINTS = """\
[strato.buses]
mem-test = strato_test_plugins:MemoryBus

[strato.dialects]
sqlitetest = strato_test_plugins:CountingDialect

[sqlalchemy.dialects]
sqlitetest = strato_test_plugins:SQLAlchemyTestDialect
"""
WHO = {"client_id": "test", "iss": "https://auth.example", "sub": "tester"}


@pytest.fixture
def installed(tmp_path: Path) -> Iterator[Any]:
    """The plugins installed as a distribution of their own, for this test only."""
    site = tmp_path / "site"
    info = site / "strato_test_plugins-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: strato-test-plugins\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    (site / "strato_test_plugins.py").write_text(PLUGINS.read_text())
    sys.path.insert(0, str(site))
    forget()
    try:
        import strato_test_plugins  # type: ignore[import-not-found]

        yield strato_test_plugins
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("strato_test_plugins", None)
        forget()


def test_without_the_distribution_neither_is_known(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="unsupported bus URL"):
        open_bus("mem-test://federation", tmp_path)
    with pytest.raises(InvalidInput, match="not supported"):
        db.create_engine(f"sqlitetest:///{tmp_path / 'x.db'}")


@pytest.mark.asyncio
async def test_a_bus_backend_is_one_class_and_an_entry_point(
    installed: Any, tmp_path: Path
) -> None:
    bus = open_bus("mem-test://federation", tmp_path)
    assert type(bus).__name__ == "MemoryBus"
    assert type(bus).__module__ == "strato_test_plugins"
    async with bus:
        subscription = await bus.subscribe("g", topics=["esgf.CMIP6"])
        await bus.publish("esgf.CMIP6", "k", {"hello": "world"})
        [message] = await subscription.fetch()
        assert (message.topic, message.key, message.json()) == (
            "esgf.CMIP6",
            "k",
            {"hello": "world"},
        )

    # The forms users are told about include the new scheme.
    with pytest.raises(InvalidInput, match=r"mem-test://name"):
        open_bus("nope://x", tmp_path)
    with pytest.raises(InvalidInput, match="names no log"):
        open_bus("mem-test://", tmp_path)


def test_a_database_dialect_is_one_class_and_an_entry_point(installed: Any, tmp_path: Path) -> None:
    """The catalog ingests and searches on an engine strato's source never names, through
    the dialect the distribution declared for it."""
    engine = db.create_engine(f"sqlitetest:///{tmp_path / 'catalog.db'}")
    assert engine.dialect.name == "sqlitetest"
    dialect = db.dialect_of(engine)
    assert isinstance(dialect, installed.CountingDialect)
    # Its connect options are the SQLite dialect's it builds on: the pragmas ran.
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"

    db.Base.metadata.create_all(engine)  # Alembic knows no such engine: tables as declared
    assert "catalog_items" in inspect(engine).get_table_names()
    store = ItemStore(db.session_factory(engine))
    items = list(generate_items(6, seed=5))
    outcomes = apply_events(store, [create_event("CMIP6", it, requester=WHO) for it in items])
    assert {o.status for o in outcomes} == {"applied"}
    assert installed.CountingDialect.calls["begin_write"] >= 1
    assert installed.CountingDialect.calls["insert_rows catalog_items"] == 1
    assert installed.CountingDialect.calls["insert_rows catalog_facets"] == 1
    assert installed.CountingDialect.calls["insert_new catalog_value_words"] == 1

    search = CatalogSearch(db.session_factory(engine))
    assert search.dialect is dialect
    page = search.search(SearchRequest(collections=["CMIP6"], limit=4))
    assert page.matched == 6
    assert len(page.items) == 4
    assert page.next_token is not None
    rest = search.search(SearchRequest(collections=["CMIP6"], limit=4, token=page.next_token))
    ids = [it["id"] for it in page.items + rest.items]
    assert sorted(ids) == sorted(it["id"] for it in items)
    engine.dispose()
