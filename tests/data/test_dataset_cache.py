"""The cache of opened datasets (strato.data.datasets.sources.DatasetCache) is bounded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strato.context import Context
from strato.data.datasets import sources
from strato.data.service import DataService
from strato.data.settings import DataSettings
from strato.errors import NotFound
from strato.settings import Settings
from tests.data.conftest import cf_dataset, cf_encoding


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DataService]:
    monkeypatch.setattr(sources, "OPENING_GATES", 4)
    settings = Settings(data_dir=tmp_path / "data")
    DataSettings.of(settings).open_datasets = 1
    DataSettings.of(settings).demo = False
    ctx = Context.open(settings)
    ctx.migrate()
    data = DataService(ctx.sessions, settings)
    for name in ("a", "b"):
        ds = cf_dataset()
        path = settings.data_dir / f"{name}.nc"
        ds.to_netcdf(path, encoding=cf_encoding(ds))
        data.register(name, [str(path)])
    yield data
    data.close()
    ctx.close()


def test_the_least_recently_used_dataset_makes_room_and_is_opened_again(
    service: DataService,
) -> None:
    cache = service.cache
    a = cache.get("a")
    b = cache.get("b")
    assert cache.peek("a") is None  # one dataset kept: a made room for b
    assert cache.peek("b") is b
    again = cache.get("a")
    assert again is not a
    assert again.decoded["tas"].shape == b.decoded["tas"].shape


def test_asking_for_datasets_that_do_not_exist_keeps_no_more_than_the_gates_bound(
    service: DataService,
) -> None:
    for n in range(50):
        with pytest.raises(NotFound):
            service.cache.get(f"missing-{n}")
    assert len(service.cache._opening) <= 4
