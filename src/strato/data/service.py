"""The data capability's operations, shared by the HTTP API and the command line."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from strato.data.datasets.registry import DatasetRegistry, Registration
from strato.data.datasets.sources import DatasetBroken, DatasetCache, DatasetStatus, OpenedDataset
from strato.data.settings import DataSettings
from strato.errors import Conflict, InvalidInput, StratoError
from strato.settings import Settings

log = logging.getLogger(__name__)


class DataService:
    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self.settings = settings
        section = DataSettings.of(settings)
        self.registry = DatasetRegistry(sessions, section.roots(settings.data_dir))
        self.refs_dir = settings.data_dir / "references"
        self.cache = DatasetCache(self.registry, section, self.refs_dir)

    def register(
        self,
        dataset_id: str,
        sources: Sequence[str],
        *,
        title: str | None = None,
        chunks: Mapping[str, int] | None = None,
        concat_dim: str = "time",
        owner: str | None = None,
        replace: bool = False,
    ) -> OpenedDataset:
        """Open, then register: a dataset that cannot open is refused, and a registration
        interrupted before its data opened (a killed server) leaves nothing behind."""
        reg = self.registry.prepare(
            dataset_id, sources, title=title, chunks=chunks, concat_dim=concat_dim, owner=owner
        )
        if not replace and self.registry.exists(dataset_id):
            raise Conflict(f"dataset {dataset_id!r} is already registered")
        try:
            opened = self.cache.open_registration(reg)
        except DatasetBroken as exc:
            raise InvalidInput(f"cannot serve {dataset_id!r}: {exc.reason}") from None
        try:
            dims = set(map(str, opened.decoded.dims))
            unknown = sorted(set(reg.chunks) - dims)
            if unknown:
                raise InvalidInput(
                    f"cannot serve {dataset_id!r}: chunks name dimension(s) "
                    f"{', '.join(unknown)} the dataset does not have; its dimensions are "
                    f"{', '.join(sorted(dims))}"
                )
            self.registry.save(reg, replace=replace)
            # As the database gives it back (timestamps), so the cache's checks match it.
            opened.registration = self.registry.get(dataset_id)
        except BaseException:
            opened.close()
            raise
        self.cache.put(opened)
        try:
            # References are built now so the first raw read does not pay for them.
            opened.raw_store  # noqa: B018
        except StratoError as exc:
            log.info("dataset %s has no raw passthrough: %s", dataset_id, exc.detail)
        return opened

    def remove(self, dataset_id: str) -> None:
        self.registry.remove(dataset_id)
        self.cache.forget(dataset_id)
        for refs in self.refs_dir.glob(f"{dataset_id}.*.json"):
            refs.unlink(missing_ok=True)

    def stac_item(self, dataset_id: str, base_url: str) -> dict[str, Any]:
        """The STAC Item describing a served dataset, its assets at ``base_url``."""
        from strato.data import catalogs

        opened = self.cache.get(dataset_id)
        try:
            opened.raw_store  # noqa: B018
            raw = True
        except StratoError:
            raw = False
        return catalogs.stac_item(
            opened.id,
            opened.registration.title,
            opened.decoded,
            base_url,
            opened.files,
            raw_available=raw,
        )

    def statuses(self) -> list[DatasetStatus]:
        return [self.cache.status(reg) for reg in self.registry.all()]

    def registrations(self) -> list[Registration]:
        return self.registry.all()

    def close(self) -> None:
        self.cache.close()
