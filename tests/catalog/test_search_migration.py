"""Migrations of the catalog's search tables on catalogs written before them, and back."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa

from strato import db
from strato.catalog.demo.generator import generate_items
from strato.catalog.ingest.apply import apply_events
from strato.catalog.model.events import create_event
from strato.catalog.search.search import CatalogSearch, SearchRequest
from strato.catalog.store import WORDS, ItemStore, facet_values, item_words
from strato.db import migrate

CATALOG = migrate.History("catalog", "strato.catalog.migrations")
WHO = {"client_id": "test", "iss": "https://test.example", "sub": "test"}


def test_catalog_0002_fills_in_an_existing_catalog_and_goes_back(database_url: str) -> None:
    engine = db.create_engine(database_url)
    migrate.upgrade_history(engine, CATALOG, "catalog_0001")
    items = list(generate_items(3, seed=21))
    items[0]["properties"]["description"] = "Written before the words were indexed"
    # As catalog_0001 made them; JSON said so, since MariaDB reflects it as text.
    item_table = sa.table(
        "catalog_items",
        *(sa.column(n) for n in ("pk", "collection_id", "id", "latest", "retracted")),
        sa.column("content", sa.JSON()),
        *(sa.column(n, sa.DateTime()) for n in ("start_datetime", "end_datetime", "updated_at")),
    )
    facet_table = sa.table("catalog_facets", *(sa.column(n) for n in ("item_pk", "name", "value")))
    now = datetime(2024, 1, 1)
    with engine.begin() as conn:
        for pk, item in enumerate(items, start=1):
            props = item["properties"]
            conn.execute(
                item_table.insert(),
                {
                    "pk": pk,
                    "collection_id": "CMIP6",
                    "id": item["id"],
                    "content": item,
                    "start_datetime": datetime.fromisoformat(props["start_datetime"][:19]),
                    "end_datetime": datetime.fromisoformat(props["end_datetime"][:19]),
                    "latest": True,
                    "retracted": False,
                    "updated_at": now,
                },
            )
            rows = [
                {"item_pk": pk, "name": n, "value": v} for n, v in facet_values(item) if n != WORDS
            ]
            conn.execute(facet_table.insert(), rows)

    db.upgrade(engine)
    sessions = db.session_factory(engine)
    search = CatalogSearch(sessions)
    # The time extent was copied from the start and end.
    start = datetime.fromisoformat(items[1]["properties"]["start_datetime"]).astimezone(UTC)
    found = search.search(SearchRequest(datetime=(start, start)))
    assert items[1]["id"] in [i["id"] for i in found.items]
    # Words were indexed from the content and the facet values already there.
    [hit] = search.search(SearchRequest(q=["indexed"])).items
    assert hit["id"] == items[0]["id"]
    variable = items[2]["properties"]["cmip6:variable_id"]
    assert items[2]["id"] in [i["id"] for i in search.search(SearchRequest(q=[variable])).items]
    # The store sees the same facets as before.
    expected = sorted((n, v) for n, v in facet_values(items[0]) if n != WORDS)
    assert ItemStore(sessions).facets("CMIP6", items[0]["id"]) == expected

    migrate.downgrade_history(engine, CATALOG, "catalog_0001")
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("catalog_items")}
        words = conn.scalar(
            sa.text("SELECT count(*) FROM catalog_facets WHERE name = :n"), {"n": WORDS}
        )
        content = conn.scalar(sa.text("SELECT content FROM catalog_items WHERE pk = 1"))
    assert "time_start" not in columns
    assert words == 0
    assert (json.loads(content) if isinstance(content, str) else content)["id"] == items[0]["id"]
    db.upgrade(engine)
    engine.dispose()


def test_catalog_0003_keeps_facet_words_once_per_value_and_goes_back(database_url: str) -> None:
    engine = db.create_engine(database_url)
    migrate.upgrade_history(engine, CATALOG, "catalog_0002")
    old, new = generate_items(2, seed=22)
    old["properties"]["cmip6:experiment"] = "an Oldvalue experiment"
    new["properties"]["cmip6:experiment"] = "a Newvalue experiment"
    facet_table = sa.table("catalog_facets", *(sa.column(n) for n in ("item_pk", "name", "value")))
    # As catalog_0002 wrote an item: a word row for every word, its facet values' too.
    with engine.begin() as conn:
        pk = 1
        conn.execute(
            sa.table(
                "catalog_items",
                *(sa.column(n) for n in ("pk", "collection_id", "id", "latest", "retracted")),
                sa.column("content", sa.JSON()),
                sa.column("updated_at", sa.DateTime()),
            ).insert(),
            {
                "pk": pk,
                "collection_id": "CMIP6",
                "id": old["id"],
                "content": old,
                "latest": True,
                "retracted": False,
                "updated_at": datetime(2024, 1, 1),
            },
        )
        rows = [(n, v) for n, v in facet_values(old) if n != WORDS]
        rows += [(WORDS, w) for w in sorted(item_words(old))]
        conn.execute(
            facet_table.insert(), [{"item_pk": pk, "name": n, "value": v} for n, v in rows]
        )

    db.upgrade(engine)
    sessions = db.session_factory(engine)
    store, search = ItemStore(sessions), CatalogSearch(sessions)
    apply_events(store, [create_event("CMIP6", new, requester=WHO)])

    def word_rows(item_id: str) -> set[str]:
        with engine.connect() as conn:
            found = conn.execute(
                sa.text(
                    "SELECT f.value FROM catalog_facets f JOIN catalog_items i ON i.pk = f.item_pk"
                    " WHERE i.id = :id AND f.name = :n"
                ),
                {"id": item_id, "n": WORDS},
            )
            return {value for (value,) in found}

    # The new item has word rows only for what its facet values do not say ...
    assert "newvalue" in item_words(new)
    assert word_rows(new["id"]) == {f"v{new['properties']['version']}"}
    # ... and free text finds both, by a facet value's word or their own.
    assert [i["id"] for i in search.search(SearchRequest(q=["newvalue"])).items] == [new["id"]]
    assert [i["id"] for i in search.search(SearchRequest(q=["oldvalue"])).items] == [old["id"]]
    both = search.search(SearchRequest(q=["experiment"])).items
    assert {i["id"] for i in both} == {old["id"], new["id"]}

    # Back at catalog_0002, the new item has the word rows catalog_0002 would have written.
    migrate.downgrade_history(engine, CATALOG, "catalog_0002")
    assert word_rows(new["id"]) == item_words(new)
    assert word_rows(old["id"]) == item_words(old)
    with engine.connect() as conn:
        assert "catalog_value_words" not in sa.inspect(conn).get_table_names()
    db.upgrade(engine)
    engine.dispose()
