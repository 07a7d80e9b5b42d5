"""Served datasets become catalog items through events: create, update, retraction."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strato.catalog.ingest.apply import apply_events
from strato.catalog.ingest.datalink import DatasetLink, collection_id
from strato.catalog.model.events import parse_event
from strato.catalog.store import ItemStore
from strato.context import Context
from strato.data.service import DataService
from strato.settings import Settings
from tests.data.conftest import cf_dataset, cf_encoding
from tests.data.model_files import write_calendar_file


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[DataService, ItemStore, DatasetLink, Path]]:
    settings = Settings(data_dir=tmp_path / "data", node_name="east")
    ctx = Context.open(settings)
    ctx.migrate()
    data = DataService(ctx.sessions, settings)
    store = ItemStore(ctx.sessions)
    link = DatasetLink(data, store, settings.node_name, "http://east.example")
    source = settings.data_dir / "tas.nc"
    ds = cf_dataset()
    ds.to_netcdf(source, encoding=cf_encoding(ds))
    yield data, store, link, source
    data.close()
    ctx.close()


def _apply(store: ItemStore, link: DatasetLink) -> list[str]:
    # Through the wire format, as a consumer would receive them.
    events = [parse_event(e.to_json()) for e in link.changes()]
    return [o.title for o in apply_events(store, events)]


def test_registered_dataset_is_created_updated_and_retracted(
    parts: tuple[DataService, ItemStore, DatasetLink, Path],
) -> None:
    data, store, link, source = parts
    collection = collection_id("east")
    assert link.changes() == []

    data.register("tas-demo", [str(source)], title="Surface air temperature")
    assert _apply(store, link) == ["created"]
    item = store.get_item(collection, "tas-demo")
    assert item["properties"]["title"] == "Surface air temperature"
    assert item["assets"]["zarr"]["href"] == "http://east.example/datasets/tas-demo/zarr/"
    # In line now: nothing more to publish, however often asked.
    assert link.changes() == []

    data.register("tas-demo", [str(source)], title="Near-surface temperature", replace=True)
    assert _apply(store, link) == ["updated"]
    assert store.get_item(collection, "tas-demo")["properties"]["title"] == (
        "Near-surface temperature"
    )

    data.remove("tas-demo")
    assert _apply(store, link) == ["patched"]
    # Retracted, not deleted: the record stays, as ESGF keeps it.
    assert store.item_flags(collection, "tas-demo") == (False, True)
    assert store.get_item(collection, "tas-demo")["assets"] == {}
    assert link.changes() == []

    data.register("tas-demo", [str(source)], title="Back again")
    assert _apply(store, link) == ["updated"]
    assert store.item_flags(collection, "tas-demo") == (True, False)


def test_an_unapplied_change_is_not_published_twice(
    parts: tuple[DataService, ItemStore, DatasetLink, Path],
) -> None:
    data, _, link, source = parts
    data.register("tas-demo", [str(source)])
    assert [e.kind for e in link.changes()] == ["create"]
    # The consumer has not applied it yet: asking again must not flood the stream.
    assert link.changes() == []


def test_a_model_calendar_dataset_is_catalogued_with_iso_dates(
    parts: tuple[DataService, ItemStore, DatasetLink, Path],
) -> None:
    data, store, link, source = parts
    model = write_calendar_file(source.parent / "tas_noleap.nc", "noleap")
    data.register("a-noleap", [str(model)])
    data.register("b-tas", [str(source)])
    assert _apply(store, link) == ["created", "created"]
    props = store.get_item(collection_id("east"), "a-noleap")["properties"]
    assert (props["start_datetime"], props["end_datetime"]) == (
        "2000-01-15T00:00:00Z",
        "2002-12-15T00:00:00Z",
    )
    assert store.get_item(collection_id("east"), "b-tas")["id"] == "b-tas"
    assert link.changes() == []


def test_a_dataset_that_cannot_be_described_holds_back_no_other(
    parts: tuple[DataService, ItemStore, DatasetLink, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    data, store, link, source = parts
    data.register("a-damaged", [str(source)])
    data.register("b-tas", [str(source)])
    describe = data.stac_item

    def fails_for_one(dataset_id: str, base_url: str) -> dict[str, Any]:
        # A fault in one dataset's description (a damaged file, a library bug).
        if dataset_id == "a-damaged":
            raise RuntimeError("HDF error while reading a-damaged")
        return describe(dataset_id, base_url)

    monkeypatch.setattr(data, "stac_item", fails_for_one)
    assert _apply(store, link) == ["created"]
    assert store.get_item(collection_id("east"), "b-tas")["id"] == "b-tas"
