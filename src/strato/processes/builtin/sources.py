"""Opening the data a request names, in the worker that runs the task.

The worker resolves a dataset id or a path itself, from the server's own settings, and
never from anything in the request: a request carrying file lists or roots could be
forged by whoever posts it, while the settings the worker runs with (the ``STRATO_*``
environment and configuration file it inherited from ``strato up`` / ``strato worker``,
or the Settings an executor hands its task context as ``settings``) name the same
database and allowed roots the data service serves from. So a dataset id opens exactly
the files its registration names, confined as :mod:`strato.data` confines them, and a
path opens only under the allowed roots (the data directory and ``data.allowed_roots``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import xarray as xr
from sqlalchemy import Engine

from strato.data.datasets.hdf5 import HDF5_LOCK
from strato.data.datasets.registry import DatasetRegistry, expand_sources
from strato.data.datasets.sources import OPENERS, DatasetBroken, detect_kind
from strato.data.settings import DataSettings
from strato.db import create_engine, session_factory
from strato.errors import InvalidInput, NotFound, StratoError
from strato.processes.builtin.domain import SourceRef, VariableRequest, invalid
from strato.settings import Settings, load_settings

# One engine per database for the life of the worker process, made on first use: a
# pool per task would reconnect on every job.
_engines: dict[str, Engine] = {}


def task_settings(ctx: Any) -> Settings:
    """The settings a task runs with: its context's, else the environment's."""
    given = getattr(ctx, "settings", None)
    return given if isinstance(given, Settings) else load_settings()


def _registry(settings: Settings) -> DatasetRegistry:
    url = settings.database_url_value
    engine = _engines.get(url)
    if engine is None:
        engine = _engines.setdefault(url, create_engine(url))
    roots = DataSettings.of(settings).roots(settings.data_dir)
    return DatasetRegistry(session_factory(engine), roots)


@contextmanager
def open_source(ref: SourceRef, settings: Settings) -> Iterator[xr.Dataset]:
    """The decoded (lazy) dataset ``ref`` names, closed on leaving."""
    if ref.dataset is not None:
        registry = _registry(settings)
        try:
            reg = registry.get(ref.dataset)
        except NotFound:
            raise invalid(ref.field, f"there is no dataset {ref.dataset!r}") from None
        roots = registry.roots_of(reg)
        sources, concat_dim = list(reg.sources), reg.concat_dim
    else:
        assert ref.path is not None
        roots = DataSettings.of(settings).roots(settings.data_dir)
        sources, concat_dim = [ref.path], "time"
    try:
        files = expand_sources(sources, roots)
        kind = detect_kind(files)
    except InvalidInput as exc:
        if ref.dataset is not None:
            raise DatasetBroken(f"dataset {ref.dataset!r} is broken: {exc.detail}") from None
        raise invalid(ref.field, exc.detail) from None
    try:
        opened = OPENERS[kind](files, concat_dim, roots)
    except StratoError:
        raise
    except Exception as exc:  # a file libnetcdf or zarr cannot read
        reason = f"{type(exc).__name__}: {exc}"
        if ref.dataset is not None:
            raise DatasetBroken(f"dataset {ref.dataset!r} is broken: {reason}") from None
        raise invalid(ref.field, f"cannot open {ref.path}: {reason}") from None
    with HDF5_LOCK:
        if opened.raw is not None:
            opened.raw.close()  # the openers make it for serving raw bytes; unused here
    try:
        yield opened.decoded
    finally:
        with HDF5_LOCK:
            opened.decoded.close()


def variable_of(ds: xr.Dataset, request: VariableRequest) -> xr.DataArray:
    if request.variable not in ds.data_vars:
        names = ", ".join(map(str, ds.data_vars)) or "none"
        raise invalid(
            request.where("variable"),
            f"{request.source.describe()} has no variable {request.variable!r}; "
            f"its variables are {names}",
        )
    return ds[request.variable]
