"""The database dialects strato knows, found through the ``strato.dialects`` entry points.

Each entry point is named after a SQLAlchemy dialect name (``engine.dialect.name``:
``sqlite``, ``postgresql``, ``mysql``, ``mariadb``) and points at a
:class:`~strato.db.dialects.base.Dialect` subclass. strato declares its own three in its
``pyproject.toml``; another distribution adds an engine by declaring one more::

    [project.entry-points."strato.dialects"]
    duckdb = "strato_duckdb:DuckDBDialect"

A name declared twice with different classes is refused, naming both: which one would
win would otherwise depend on the order distributions happen to be found in.
"""

from __future__ import annotations

import threading
from importlib.metadata import entry_points
from typing import Any

from sqlalchemy.engine import URL

from strato.db.dialects.base import Dialect
from strato.errors import InvalidInput

GROUP = "strato.dialects"

_lock = threading.Lock()
# Dialect name -> its instance; built on first use, from the entry points.
_by_name: dict[str, Dialect] | None = None


def _load() -> dict[str, Dialect]:
    global _by_name
    found = _by_name
    if found is not None:
        return found
    with _lock:
        if _by_name is not None:
            return _by_name
        targets: dict[str, str] = {}
        classes: dict[str, type[Dialect]] = {}
        for ep in entry_points(group=GROUP):
            if ep.name in targets and targets[ep.name] != ep.value:
                raise RuntimeError(
                    f"database dialect {ep.name!r} is declared twice in entry points "
                    f"{GROUP!r}: {targets[ep.name]} and {ep.value}"
                )
            targets[ep.name] = ep.value
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Dialect)):
                raise RuntimeError(f"entry point {ep.name} = {ep.value} is not a Dialect class")
            classes[ep.name] = cls
        if not classes:
            raise RuntimeError(
                f"no database dialects are declared (entry points {GROUP!r}): "
                "is strato installed (pip install -e .)?"
            )
        # One instance per class, shared by the names it serves.
        instances: dict[type[Dialect], Dialect] = {}
        _by_name = {name: instances.setdefault(cls, cls()) for name, cls in classes.items()}
        return _by_name


def dialect_named(name: str) -> Dialect:
    """The dialect registered for SQLAlchemy dialect name ``name``."""
    try:
        return _load()[name]
    except KeyError:
        raise InvalidInput(
            f"database engine {name!r} is not supported; use one of: {', '.join(known())}"
        ) from None


def dialect_of(bind: Any) -> Dialect:
    """The dialect of ``bind``: an Engine, Connection or Session (anything with a
    SQLAlchemy ``dialect``, or a ``get_bind()``)."""
    sa_dialect = getattr(bind, "dialect", None)
    if sa_dialect is None:
        sa_dialect = bind.get_bind().dialect
    return dialect_named(sa_dialect.name)


def dialect_for_url(url: URL) -> Dialect:
    """The dialect for the backend ``url`` names (a dialect name or one of its aliases)."""
    backend = url.get_backend_name()
    dialects = _load()
    if backend in dialects:
        return dialects[backend]
    for dialect in dialects.values():
        if backend in dialect.aliases:
            return dialect
    raise InvalidInput(
        f"database backend {backend!r} is not supported; use one of: {', '.join(known())}"
    )


def known() -> list[str]:
    """The backend names a database URL may use."""
    dialects = _load()
    return sorted({*dialects, *(a for d in dialects.values() for a in d.aliases)})


def registered() -> list[Dialect]:
    """Every registered dialect, once each."""
    return list(dict.fromkeys(_load().values()))


def forget() -> None:
    """Read the entry points again on next use (after a distribution was added)."""
    global _by_name
    with _lock:
        _by_name = None
