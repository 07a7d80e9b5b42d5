"""Opening registered datasets: decoded for analysis, raw for serving, kept in a cache
that reopens a dataset when its files change and remembers why one failed.

Every call into libhdf5 holds :data:`strato.data.datasets.hdf5.HDF5_LOCK` (see there why), and
every file is read within the roots its registration allows (:mod:`strato.data.datasets.confine`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import xarray as xr

from strato.caching import LRU
from strato.data.datasets.confine import as_root_strings
from strato.data.datasets.hdf5 import HDF5_LOCK
from strato.data.datasets.registry import DatasetRegistry, Registration, expand_sources
from strato.data.datasets.stores import ConfinedLocalStore, ReferenceStore
from strato.data.raw.raw_store import RawStore, load_references, save_references
from strato.data.raw.references import BUILD_GENERATION, build_references
from strato.data.settings import DataSettings
from strato.data.zarr_views.compression import Compression
from strato.data.zarr_views.zarr_store import ZarrView
from strato.errors import InvalidInput, NotFound, StratoError, Unavailable
from strato.retry import Backoff, retry_call

log = logging.getLogger(__name__)

Kind = Literal["netcdf", "zarr", "references"]
# Stat calls per request add up on chunk-heavy reads; a second of staleness is harmless.
RECHECK_SECONDS = 1.0
# Broken datasets whose reason is kept; one forgotten early is only tried again sooner.
BROKEN_KEPT = 4096
# Per-dataset opening locks kept (a few hundred bytes each).
OPENING_GATES = 4096


class DatasetBroken(Unavailable):
    code = "dataset-broken"
    title = "Dataset cannot be opened"

    def __init__(self, detail: str, reason: str | None = None) -> None:
        super().__init__(detail)
        self.reason = detail if reason is None else reason


def detect_kind(files: list[Path]) -> Kind:
    if all(f.is_dir() for f in files):
        if len(files) == 1 and any(
            (files[0] / marker).exists() for marker in (".zgroup", ".zmetadata", "zarr.json")
        ):
            return "zarr"
        raise InvalidInput(f"{files[0]} is a directory but not a Zarr store")
    if len(files) == 1 and files[0].suffix == ".json":
        return "references"
    return "netcdf"


def fingerprint(files: list[Path]) -> tuple[str, float]:
    """A digest of names, sizes and modification times, and the newest mtime."""
    h = hashlib.sha256()
    newest = 0.0
    for f in files:
        probes = [f]
        if f.is_dir():
            probes = [p for p in (f / ".zmetadata", f / "zarr.json", f / ".zgroup") if p.exists()]
        for p in probes:
            st = p.stat()
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            newest = max(newest, st.st_mtime)
    return h.hexdigest()[:20], newest


@dataclass
class OpenedDataset:
    registration: Registration
    files: list[Path]
    kind: Kind
    fingerprint: str
    last_modified: float
    decoded: xr.Dataset
    raw: xr.Dataset | None
    compression: Compression
    refs_dir: Path
    roots: list[Path]
    checked_at: float = field(default_factory=time.monotonic)
    # The fast path of chunks of dask-backed variables (data.fast_dask_blocks).
    fast_dask_blocks: bool = True
    _view: ZarrView | None = None
    _raw_store: RawStore | None = None
    _raw_store_error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def id(self) -> str:
        return self.registration.id

    @property
    def zarr(self) -> ZarrView:
        with self._lock:
            if self._view is None:
                chunks = dict(self.registration.chunks)
                if self.raw is not None:
                    self._view = ZarrView(
                        self.raw, self.compression, chunks, fast_dask_blocks=self.fast_dask_blocks
                    )
                else:
                    self._view = ZarrView.from_decoded(
                        self.decoded,
                        self.compression,
                        chunks,
                        fast_dask_blocks=self.fast_dask_blocks,
                    )
            return self._view

    @property
    def raw_store(self) -> RawStore:
        """Byte-range references into the original files, built once per file version."""
        with self._lock:
            if self._raw_store is None and self._raw_store_error is None:
                try:
                    self._raw_store = RawStore(self._references(), allowed_roots=self.roots)
                except StratoError as exc:
                    self._raw_store_error = exc.detail
                except Exception as exc:  # kerchunk raises whatever h5py raises
                    log.warning("references for %s failed: %s", self.id, exc)
                    self._raw_store_error = f"{type(exc).__name__}: {exc}"
            if self._raw_store is None:
                raise NotFound(
                    f"dataset {self.id!r} has no raw passthrough: {self._raw_store_error}"
                )
            return self._raw_store

    @property
    def raw_store_if_built(self) -> RawStore | None:
        """The raw store if a request has built it already; None instead of building it."""
        return self._raw_store

    def _references(self) -> dict[str, Any]:
        if self.kind == "references":
            return load_references(self.files[0])
        if self.kind != "netcdf":
            raise NotFound("raw passthrough serves NetCDF and HDF5 files; this is a Zarr store")
        path = self.refs_dir / f"{self.id}.{self.fingerprint}.g{BUILD_GENERATION}.json"
        if path.exists():
            return load_references(path)
        with HDF5_LOCK:  # kerchunk reads the files with h5py
            refs = build_references(self.files, concat_dim=self.registration.concat_dim)
        for old in self.refs_dir.glob(f"{self.id}.*.json"):
            old.unlink(missing_ok=True)
        save_references(refs, path)
        return refs

    def close(self) -> None:
        with HDF5_LOCK:
            self.decoded.close()
            if self.raw is not None:
                self.raw.close()


@dataclass(frozen=True)
class DatasetStatus:
    id: str
    title: str
    state: Literal["ok", "broken", "unopened"]
    reason: str | None
    files: int


@dataclass
class Sources:
    """What an opener makes of a dataset's files."""

    decoded: xr.Dataset
    raw: xr.Dataset | None
    raw_store: RawStore | None = None


def _open_netcdf(files: list[Path], concat_dim: str) -> Sources:
    # The whole open under the lock: xarray locks the file open itself but not the
    # metadata reads that follow; lock= makes its later chunk reads (and dask's) take it.
    with HDF5_LOCK:
        decoded, raw = _open_netcdf_locked(files, concat_dim)
    return Sources(decoded, raw)


def _open_netcdf_locked(files: list[Path], concat_dim: str) -> tuple[xr.Dataset, xr.Dataset | None]:
    if len(files) == 1:
        decoded = xr.open_dataset(files[0], chunks={}, lock=HDF5_LOCK)
        raw = xr.open_dataset(files[0], decode_cf=False, cache=False, lock=HDF5_LOCK)
        return decoded, raw
    combine: dict[str, Any] = {
        "combine": "nested",
        "concat_dim": concat_dim,
        "data_vars": "minimal",
        "coords": "minimal",
        "compat": "override",
        "join": "override",
    }
    encodings: set[tuple[Any, ...]] = set()

    def note_encoding(ds: xr.Dataset) -> xr.Dataset:
        for name, var in ds.variables.items():
            if concat_dim in var.dims:
                a = var.attrs
                encodings.add(
                    (
                        name,
                        str(a.get("units")),
                        str(a.get("calendar")),
                        str(a.get("scale_factor")),
                        str(a.get("add_offset")),
                        str(a.get("_FillValue")),
                    )
                )
        return ds

    decoded = xr.open_mfdataset(files, lock=HDF5_LOCK, **combine)
    raw = xr.open_mfdataset(
        files, decode_cf=False, preprocess=note_encoding, lock=HDF5_LOCK, **combine
    )
    names = [e[0] for e in encodings]
    if len(names) != len(set(names)):
        # Files encode the same variable differently (e.g. other time units): raw values
        # cannot be concatenated as they are, so serve CF-encoded from the decoded data.
        raw.close()
        return decoded, None
    return decoded, raw


def _open_zarr(path: Path, roots: list[Path]) -> Sources:
    # zarr's LocalStore would follow a symbolic link inside the store out of the roots.
    store = ConfinedLocalStore(path, roots=as_root_strings(roots))
    # xarray opens zarr Store objects; its annotation does not list them.
    decoded = xr.open_dataset(store, engine="zarr", chunks={})  # type: ignore[arg-type]
    raw = xr.open_dataset(store, engine="zarr", decode_cf=False)  # type: ignore[arg-type]
    return Sources(decoded, raw)


def _open_references(path: Path, roots: list[Path]) -> Sources:
    # Read through the checked reference set that /kerchunk serves, not fsspec's reference
    # file system, which would open whatever the JSON names and follow links out of the
    # roots; so both stores serve the same bytes and metadata.
    raw_store = RawStore(load_references(path), allowed_roots=roots)
    store = ReferenceStore(raw_store)
    kwargs: dict[str, Any] = {"engine": "zarr", "consolidated": True, "zarr_format": 2}
    decoded = xr.open_dataset(store, chunks={}, **kwargs)  # type: ignore[arg-type]
    raw = xr.open_dataset(store, decode_cf=False, **kwargs)  # type: ignore[arg-type]
    return Sources(decoded, raw, raw_store)


Opener = Callable[[list[Path], str, list[Path]], Sources]
OPENERS: dict[Kind, Opener] = {
    "netcdf": lambda files, concat_dim, _: _open_netcdf(files, concat_dim),
    "zarr": lambda files, _, roots: _open_zarr(files[0], roots),
    "references": lambda files, _, roots: _open_references(files[0], roots),
}
# Errors of the operating system or of libhdf5 ("NetCDF: HDF error") may pass: a file
# being replaced, a descriptor limit. The open is tried once more before giving up.
_TRANSIENT = (OSError, RuntimeError)
_REOPEN = Backoff(0.0, 0.0)  # at once: what passes is gone by the next call or not soon


class DatasetCache:
    """Opened datasets, least recently used first out; broken ones remember the reason
    for a while (``data.broken_retry_seconds``), then are tried again."""

    def __init__(self, registry: DatasetRegistry, settings: DataSettings, refs_dir: Path) -> None:
        self.registry = registry
        self.settings = settings
        self.refs_dir = refs_dir
        self.compression = Compression(
            codec=settings.compression,
            level=settings.effective_level,
            bitround_keepbits=settings.bitround_keepbits,
        )
        # What drops out is closed, outside the cache's lock (closing takes the HDF5 lock).
        self._open: LRU[str, OpenedDataset] = LRU(
            settings.open_datasets, on_evict=lambda _, opened: opened.close()
        )
        # id -> (fingerprint, reason), forgotten after broken_retry_seconds: then tried again.
        self._broken: LRU[str, tuple[str, str]] = LRU(
            BROKEN_KEPT, ttl=settings.broken_retry_seconds
        )
        # One lock per dataset being opened, bounded too: ids come from requests, and a
        # gate forgotten while in use costs at most one more opening of its dataset.
        self._opening: LRU[str, threading.Lock] = LRU(OPENING_GATES)

    def peek(self, dataset_id: str) -> OpenedDataset | None:
        """The dataset if it is open and was checked against its files lately; never opens
        or checks anything, so it is safe on the event loop."""
        opened = self._open.peek(dataset_id)
        if opened is None or time.monotonic() - opened.checked_at >= RECHECK_SECONDS:
            return None
        return opened

    def get(self, dataset_id: str) -> OpenedDataset:
        opened = self._open.get(dataset_id)
        if opened is not None and time.monotonic() - opened.checked_at < RECHECK_SECONDS:
            return opened
        gate = self._opening.setdefault(dataset_id, threading.Lock())
        # One thread opens a dataset; the others wait for it instead of opening it again.
        with gate:
            return self._get_fresh(dataset_id)

    def open_registration(self, reg: Registration) -> OpenedDataset:
        """Open ``reg`` without caching it or remembering a failure: a registration is
        saved only once this succeeded (then :meth:`put` it)."""
        roots = self.registry.roots_of(reg)
        try:
            files = expand_sources(reg.sources, roots)
            digest, newest = fingerprint(files)
        except StratoError as exc:
            raise DatasetBroken(f"dataset {reg.id!r} is broken: {exc.detail}", exc.detail) from None
        return self._open_files(reg, files, roots, digest, newest)

    def put(self, opened: OpenedDataset) -> None:
        """Cache a dataset opened by :meth:`open_registration`, replacing what was there."""
        self._broken.pop(opened.id)
        previous = self._open.put(opened.id, opened)
        if previous is not None and previous is not opened:
            previous.close()

    def _get_fresh(self, dataset_id: str) -> OpenedDataset:
        reg = self.registry.get(dataset_id)
        roots = self.registry.roots_of(reg)
        try:
            files = expand_sources(reg.sources, roots)
            digest, newest = fingerprint(files)
        except StratoError as exc:
            self._mark_broken(dataset_id, "", exc.detail)
            raise DatasetBroken(
                f"dataset {dataset_id!r} is broken: {exc.detail}", exc.detail
            ) from None
        current = self._open.peek(dataset_id)
        if current is not None and current.fingerprint == digest and current.registration == reg:
            current.checked_at = time.monotonic()
            return current
        known = self._broken.get(dataset_id)
        if known is not None and known[0] == digest:
            raise DatasetBroken(f"dataset {dataset_id!r} is broken: {known[1]}", known[1])
        try:
            opened = self._open_files(reg, files, roots, digest, newest)
        except DatasetBroken as exc:
            self._mark_broken(dataset_id, digest, exc.reason)
            raise
        self._broken.pop(dataset_id)
        previous = self._open.put(dataset_id, opened)
        if previous is not None:
            log.info("dataset %s changed on disk; reopened", dataset_id)
            previous.close()
        return opened

    def _open_files(
        self, reg: Registration, files: list[Path], roots: list[Path], digest: str, newest: float
    ) -> OpenedDataset:
        try:
            kind = detect_kind(files)
            sources = retry_call(
                lambda: OPENERS[kind](files, reg.concat_dim, roots),
                retries=1,
                transient=_TRANSIENT,
                backoff=_REOPEN,
                on_retry=lambda _, exc, __: log.info(
                    "dataset %s: %s; trying once more", reg.id, exc
                ),
            )
        except Exception as exc:
            reason = exc.detail if isinstance(exc, StratoError) else f"{type(exc).__name__}: {exc}"
            log.warning("dataset %s failed to open: %s", reg.id, reason)
            raise DatasetBroken(f"dataset {reg.id!r} is broken: {reason}", reason) from None
        return OpenedDataset(
            registration=reg,
            files=files,
            kind=kind,
            fingerprint=digest,
            last_modified=newest,
            decoded=sources.decoded,
            raw=sources.raw,
            compression=self.compression,
            refs_dir=self.refs_dir,
            roots=roots,
            fast_dask_blocks=self.settings.fast_dask_blocks,
            _raw_store=sources.raw_store,
        )

    def _mark_broken(self, dataset_id: str, digest: str, reason: str) -> None:
        self._broken.put(dataset_id, (digest, reason))
        dropped = self._open.pop(dataset_id)
        if dropped is not None:
            dropped.close()

    def forget(self, dataset_id: str) -> None:
        self._broken.pop(dataset_id)
        dropped = self._open.pop(dataset_id)
        if dropped is not None:
            dropped.close()

    def status(self, reg: Registration) -> DatasetStatus:
        try:
            opened = self.get(reg.id)
        except DatasetBroken as exc:
            return DatasetStatus(reg.id, reg.title, "broken", exc.reason, 0)
        return DatasetStatus(reg.id, reg.title, "ok", None, len(opened.files))

    def close(self) -> None:
        for opened in self._open.clear():
            opened.close()
