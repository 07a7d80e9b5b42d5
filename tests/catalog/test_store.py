"""The item store and the event applier, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select, text

from strato.catalog.demo.generator import generate_items
from strato.catalog.ingest.apply import _Batch, apply_events
from strato.catalog.model.events import (
    create_event,
    patch_event,
    replication_event,
    retraction_event,
    update_event,
)
from strato.catalog.store import FacetRow, ItemStore, minimal_collection
from strato.db import create_engine, session_factory, upgrade
from strato.errors import NotFound

WHO = {"client_id": "test", "iss": "https://auth.example", "sub": "tester"}


@pytest.fixture
def store(database_url: str) -> Iterator[ItemStore]:
    engine = create_engine(database_url)
    upgrade(engine)
    yield ItemStore(session_factory(engine))
    engine.dispose()


@pytest.fixture(scope="module")
def items() -> list[dict[str, Any]]:
    return list(generate_items(20, seed=3))


def _version(item: dict[str, Any], version: str) -> dict[str, Any]:
    """Another version of the same dataset: same base_id, new id and version."""
    new = copy.deepcopy(item)
    base = new["properties"]["base_id"]
    new["id"] = f"{base}.v{version}"
    new["properties"]["version"] = version
    return new


def test_creates_apply_and_are_readable(store: ItemStore, items: list[dict[str, Any]]) -> None:
    outcomes = apply_events(store, [create_event("CMIP6", it, requester=WHO) for it in items[:5]])
    assert [(o.status, o.http_status) for o in outcomes] == [("applied", 201)] * 5
    assert store.count() == 5
    assert store.count("CMIP6") == 5
    assert store.count("other") == 0
    assert store.get_item("CMIP6", items[0]["id"]) == items[0]
    assert store.item_flags("CMIP6", items[0]["id"]) == (True, False)
    # The collection did not exist: a minimal one was made.
    assert store.get_collection("CMIP6") == minimal_collection("CMIP6")
    with pytest.raises(NotFound):
        store.get_item("CMIP6", "nope")


def test_upsert_collection_replaces(store: ItemStore) -> None:
    store.upsert_collection({**minimal_collection("C"), "description": "one"})
    store.upsert_collection({**minimal_collection("C"), "description": "two"})
    assert store.get_collection("C")["description"] == "two"


def test_redelivery_is_a_duplicate_and_changes_nothing(
    store: ItemStore, items: list[dict[str, Any]]
) -> None:
    event = create_event("CMIP6", items[0], requester=WHO)
    [first] = apply_events(store, [event])
    before = store.get_item("CMIP6", items[0]["id"])
    # Again in a later batch, and twice within one batch.
    again = apply_events(store, [event])
    both = apply_events(store, [event, event])
    for outcome in [*again, *both]:
        assert outcome.status == "duplicate"
        assert (outcome.http_status, outcome.title, outcome.detail) == (
            first.http_status,
            first.title,
            first.detail,
        )
    assert store.get_item("CMIP6", items[0]["id"]) == before
    assert store.count() == 1
    recorded = store.outcome(event.metadata.event_id)
    assert recorded is not None
    assert (recorded.outcome, recorded.status) == ("applied", 201)
    assert store.outcome("unknown") is None


def test_a_batch_whose_report_fails_leaves_nothing_behind(
    store: ItemStore, items: list[dict[str, Any]]
) -> None:
    # The consumer reports rejections in before_commit: when that fails, the batch must
    # be as if never applied, so its re-delivery is applied and reported again.
    events = [create_event("CMIP6", item, requester=WHO) for item in items[:3]]

    def report_fails(outcomes: list[Any]) -> None:
        assert [o.status for o in outcomes] == ["applied"] * 3
        raise RuntimeError("the error topic is down")

    with pytest.raises(RuntimeError, match="error topic"):
        apply_events(store, events, before_commit=report_fails)
    assert store.count() == 0
    assert store.outcome(events[0].metadata.event_id) is None
    assert [o.status for o in apply_events(store, events)] == ["applied"] * 3
    assert store.count() == 3


def test_second_create_of_same_id_conflicts(store: ItemStore, items: list[dict[str, Any]]) -> None:
    apply_events(store, [create_event("CMIP6", items[0], requester=WHO)])
    changed = copy.deepcopy(items[0])
    changed["properties"]["title"] = "changed"
    [outcome] = apply_events(store, [create_event("CMIP6", changed, requester=WHO)])
    assert (outcome.status, outcome.http_status, outcome.title) == (
        "rejected",
        409,
        "item-already-exists",
    )
    assert store.get_item("CMIP6", items[0]["id"]) == items[0]


def test_update_and_patch_of_missing_item_are_404(
    store: ItemStore, items: list[dict[str, Any]]
) -> None:
    outcomes = apply_events(
        store,
        [
            update_event("CMIP6", items[0], requester=WHO),
            patch_event("CMIP6", items[0]["id"], {"properties": {"x": 1}}, requester=WHO),
            retraction_event("CMIP6", items[0]["id"], requester=WHO),
        ],
    )
    assert [(o.status, o.http_status, o.title) for o in outcomes] == [
        ("rejected", 404, "item-not-found")
    ] * 3
    assert store.count() == 0


def test_update_replaces_the_item(store: ItemStore, items: list[dict[str, Any]]) -> None:
    apply_events(store, [create_event("CMIP6", items[0], requester=WHO)])
    new = copy.deepcopy(items[0])
    new["properties"]["cmip6:variable_id"] = "tas"
    [outcome] = apply_events(store, [update_event("CMIP6", new, requester=WHO)])
    assert (outcome.status, outcome.http_status) == ("applied", 200)
    assert store.get_item("CMIP6", new["id"]) == new
    assert ("cmip6:variable_id", "tas") in store.facets("CMIP6", new["id"])


def test_patch_retraction_and_replication(store: ItemStore, items: list[dict[str, Any]]) -> None:
    item = items[0]
    iid = item["id"]
    key = next(iter(item["assets"]))
    replica = {"href": "https://data.west.example/x.nc"}
    outcomes = apply_events(
        store,
        [
            create_event("CMIP6", item, requester=WHO),
            patch_event("CMIP6", iid, {"properties": {"replica": True}}, requester=WHO),
            replication_event("CMIP6", iid, {key: {"west": replica}}, requester=WHO),
        ],
    )
    assert [o.status for o in outcomes] == ["applied"] * 3
    got = store.get_item("CMIP6", iid)
    assert got["properties"]["replica"] is True
    assert got["assets"][key]["alternate"] == {"west": {"alternate:name": "west", **replica}}

    [retracted] = apply_events(store, [retraction_event("CMIP6", iid, requester=WHO)])
    assert retracted.status == "applied"
    got = store.get_item("CMIP6", iid)
    assert got["assets"] == {}
    assert got["properties"]["retracted"] is True
    assert got["properties"]["latest"] is False
    # The record stays, with its flags in the columns.
    assert store.count() == 1
    assert store.item_flags("CMIP6", iid) == (False, True)


def test_new_version_demotes_the_old_latest(store: ItemStore, items: list[dict[str, Any]]) -> None:
    old = _version(items[0], "20190101")
    new = _version(items[0], "20210101")
    older = _version(items[0], "20180101")
    apply_events(store, [create_event("CMIP6", old, requester=WHO)])
    assert store.item_flags("CMIP6", old["id"]) == (True, False)
    apply_events(store, [create_event("CMIP6", new, requester=WHO)])
    assert store.item_flags("CMIP6", old["id"]) == (False, False)
    assert store.get_item("CMIP6", old["id"])["properties"]["latest"] is False
    assert store.item_flags("CMIP6", new["id"]) == (True, False)
    # An older version published late does not take over.
    apply_events(store, [create_event("CMIP6", older, requester=WHO)])
    assert store.item_flags("CMIP6", older["id"]) == (False, False)
    assert store.get_item("CMIP6", older["id"])["properties"]["latest"] is False
    assert store.item_flags("CMIP6", new["id"]) == (True, False)


def test_versions_within_one_batch(store: ItemStore, items: list[dict[str, Any]]) -> None:
    old = _version(items[1], "20190101")
    new = _version(items[1], "20210101")
    apply_events(
        store,
        [create_event("CMIP6", old, requester=WHO), create_event("CMIP6", new, requester=WHO)],
    )
    assert store.item_flags("CMIP6", old["id"]) == (False, False)
    assert store.item_flags("CMIP6", new["id"]) == (True, False)


def test_bad_patch_is_rejected_and_the_batch_goes_on(
    store: ItemStore, items: list[dict[str, Any]]
) -> None:
    a, b, c = items[0], items[1], items[2]
    bad_test = [
        {"op": "replace", "path": "/properties/title", "value": "x"},
        {"op": "test", "path": "/properties/project", "value": "CORDEX"},
    ]
    bad_path = [{"op": "remove", "path": "/properties/nothing"}]
    outcomes = apply_events(
        store,
        [
            create_event("CMIP6", a, requester=WHO, request_id="req-1"),
            patch_event("CMIP6", a["id"], bad_test, requester=WHO, request_id="req-1"),
            create_event("CMIP6", b, requester=WHO, request_id="req-1"),
            patch_event("CMIP6", b["id"], bad_path, requester=WHO, request_id="req-2"),
            create_event("CMIP6", c, requester=WHO, request_id="req-2"),
        ],
    )
    assert [o.status for o in outcomes] == [
        "applied",
        "rejected",
        "applied",
        "rejected",
        "applied",
    ]
    assert (outcomes[1].http_status, outcomes[1].title) == (400, "invalid-patch")
    assert "patch[1] (test)" in outcomes[1].detail
    assert "patch[0] (remove)" in outcomes[3].detail
    assert store.count() == 3
    # JSON Patch is atomic: the replace before the failed test did not happen.
    assert store.get_item("CMIP6", a["id"]) == a

    req1 = store.outcomes_for_request("req-1")
    assert sorted(o.outcome for o in req1) == ["applied", "applied", "rejected"]
    assert {o.item_id for o in req1} == {a["id"], b["id"]}
    req2 = store.outcomes_for_request("req-2")
    assert sorted((o.outcome, o.status) for o in req2) == [("applied", 201), ("rejected", 400)]
    assert store.outcomes_for_request("nothing") == []


def test_one_savepoint_per_event_path_gives_the_same_outcomes(
    store: ItemStore, items: list[dict[str, Any]]
) -> None:
    # The path apply_events falls back to when another writer clashes with the batch.
    a, b = items[0], items[1]
    old, new = _version(items[2], "20190101"), _version(items[2], "20210101")
    events = [
        create_event("CMIP6", a, requester=WHO),
        patch_event("CMIP6", a["id"], [{"op": "remove", "path": "/nope"}], requester=WHO),
        create_event("CMIP6", a, requester=WHO),
        create_event("CMIP6", b, requester=WHO),
        retraction_event("CMIP6", b["id"], requester=WHO),
        create_event("CMIP6", old, requester=WHO),
        create_event("CMIP6", new, requester=WHO),
    ]
    events.append(events[0])
    with store.sessions.begin() as session:
        outcomes = _Batch(session, events, store.worded, isolated=True).run(events)
    assert [(o.status, o.http_status) for o in outcomes] == [
        ("applied", 201),
        ("rejected", 400),
        ("rejected", 409),
        ("applied", 201),
        ("applied", 200),
        ("applied", 201),
        ("applied", 201),
        ("duplicate", 201),
    ]
    assert store.count() == 4
    assert store.item_flags("CMIP6", b["id"]) == (False, True)
    assert store.item_flags("CMIP6", old["id"]) == (False, False)
    assert store.item_flags("CMIP6", new["id"]) == (True, False)
    assert ("project", "CMIP6") in store.facets("CMIP6", b["id"])


def test_both_write_paths_store_the_same_column_values(
    store: ItemStore, items: list[dict[str, Any]]
) -> None:
    # Created items go to the driver directly, savepoint-per-event ones through the ORM:
    # searches compare stored values, so both must store a time the same way (on SQLite,
    # the same text).
    a, b = _version(items[3], "20190101"), _version(items[3], "20200101")
    apply_events(store, [create_event("CMIP6", a, requester=WHO)])
    second = [create_event("CMIP6", b, requester=WHO)]
    with store.sessions.begin() as session:
        _Batch(session, second, store.worded, isolated=True).run(second)
    raw = text("SELECT start_datetime, time_start FROM catalog_items WHERE id = :id")
    with store.sessions() as s:
        first_row, second_row = (tuple(s.execute(raw, {"id": i["id"]}).one()) for i in (a, b))
    assert first_row == second_row


def test_facets_rows_for_cmip6_properties(store: ItemStore, items: list[dict[str, Any]]) -> None:
    item = items[0]
    apply_events(store, [create_event("CMIP6", item, requester=WHO)])
    facets = store.facets("CMIP6", item["id"])
    props = item["properties"]
    expected: list[tuple[str, str]] = [("project", "CMIP6")]
    for name, value in props.items():
        if name.startswith("cmip6:"):
            values = value if isinstance(value, list) else [value]
            expected.extend((name, str(v)) for v in values if len(str(v)) <= 255)
    assert facets == sorted(expected)
    assert ("cmip6:source_id", props["cmip6:source_id"]) in facets
    assert all(name.startswith(("cmip6:", "project")) for name, _ in facets)
    # One row per list element.
    assert len([f for f in facets if f[0] == "cmip6:activity_id"]) == len(
        props["cmip6:activity_id"]
    )
    # A patch rewrites them.
    patch = [{"op": "replace", "path": "/properties/cmip6:source_id", "value": "OTHER"}]
    apply_events(store, [patch_event("CMIP6", item["id"], patch, requester=WHO)])
    facets = store.facets("CMIP6", item["id"])
    assert ("cmip6:source_id", "OTHER") in facets
    assert ("cmip6:source_id", props["cmip6:source_id"]) not in facets
    with store.sessions() as s:
        by_term = s.scalars(
            select(FacetRow.item_pk).where(
                FacetRow.name == "cmip6:source_id", FacetRow.value == "OTHER"
            )
        ).all()
    assert len(by_term) == 1


def test_throughput_of_generated_creates(store: ItemStore, database_url: str) -> None:
    total, size = 2000, 500
    events = [create_event("CMIP6", it, requester=WHO) for it in generate_items(total, seed=11)]
    started = time.perf_counter()
    for start in range(0, total, size):
        outcomes = apply_events(store, events[start : start + size])
        assert all(o.status == "applied" for o in outcomes)
    elapsed = time.perf_counter() - started
    engine = database_url.split(":", 1)[0]
    print(
        f"\napplied {total} creates on {engine} in {elapsed:.2f} s: {total / elapsed:.0f} items/s"
    )
    assert store.count("CMIP6") == total


def test_a_batch_reads_items_by_index_not_by_scanning_them(tmp_path: Any) -> None:
    """Each batch looks up the items and dataset versions it touches: through indexes,
    or ingest would slow down as the catalog grows (SQLite, whose plans need no
    statistics and so do not change with the data)."""
    engine = create_engine(f"sqlite:///{tmp_path / 'plans.db'}")
    upgrade(engine)
    store = ItemStore(session_factory(engine))
    items = list(generate_items(30, seed=5))
    apply_events(store, [create_event("CMIP6", it, requester=WHO) for it in items[:20]])
    reads: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "catalog_items" in statement:
            reads.append((statement, params))

    event.listen(engine, "before_cursor_execute", seen)
    batch = [create_event("CMIP6", it, requester=WHO) for it in items[20:]]
    batch += [create_event("CMIP6", _version(items[0], "20990101"), requester=WHO)]
    batch += [retraction_event("CMIP6", items[1]["id"], requester=WHO)]
    outcomes = apply_events(store, batch)
    event.remove(engine, "before_cursor_execute", seen)
    assert {o.status for o in outcomes} == {"applied"}
    assert store.item_flags("CMIP6", items[0]["id"]) == (False, False)
    assert len(reads) >= 2  # the items by id, the datasets' latest versions
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        for statement, params in reads:
            plan = [row[3] for row in raw.execute(f"EXPLAIN QUERY PLAN {statement}", params)]
            # A scan, or the index of ``latest``, which nearly every row is in.
            bad = [p for p in plan if p.startswith("SCAN catalog_items") or "_latest" in p]
            assert not bad, (statement, plan)
    engine.dispose()
