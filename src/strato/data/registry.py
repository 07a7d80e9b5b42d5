"""Registrations of datasets: which files make a dataset, and how to serve them.

A registration is validated when made (ids, allowed roots, that the sources
exist); whether the files open is the business of :mod:`strato.data.sources`,
which marks a dataset broken without affecting the others.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from strato.db import Base, UTCDateTime, utcnow
from strato.errors import Conflict, InvalidInput, NotFound

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_DIM = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_GLOB_CHARS = set("*?[")


class DatasetRow(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    title: Mapped[str] = mapped_column(String(255))
    sources: Mapped[list[str]] = mapped_column(JSON)
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    owner: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass(frozen=True)
class Registration:
    id: str
    title: str
    sources: tuple[str, ...]
    chunks: Mapping[str, int] = field(default_factory=dict)
    concat_dim: str = "time"
    owner: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


def validate_id(dataset_id: str) -> str:
    if not _ID.match(dataset_id):
        raise InvalidInput(
            f"invalid dataset id {dataset_id!r}: 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return dataset_id


def parse_chunks(text: str | Mapping[str, int] | None) -> dict[str, int]:
    """``time=100,lat=90`` (CLI) or a mapping (API) to validated chunk sizes."""
    if not text:
        return {}
    items: list[tuple[str, Any]]
    if isinstance(text, str):
        items = []
        for part in text.split(","):
            name, sep, value = part.partition("=")
            if not sep or not value.strip().isdigit():
                raise InvalidInput(
                    f"invalid chunks {text!r}: use dim=size pairs separated by commas, "
                    "e.g. time=100,lat=90"
                )
            items.append((name.strip(), int(value)))
    else:
        items = list(text.items())
    chunks: dict[str, int] = {}
    for name, size in items:
        if not _DIM.match(name) or not isinstance(size, int) or size < 1:
            raise InvalidInput(
                f"invalid chunk size {name}={size}: a dimension name and a positive integer"
            )
        chunks[name] = size
    return chunks


def within_roots(path: Path, roots: Sequence[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved == root or resolved.is_relative_to(root) for root in roots)


def expand_sources(sources: Sequence[str], roots: Sequence[Path]) -> list[Path]:
    """Files (or Zarr directories) a registration names, in order; refuses anything
    outside the allowed roots, before and after following symbolic links."""
    if not sources:
        raise InvalidInput("a dataset needs at least one source path or glob")
    found: list[Path] = []
    for source in sources:
        path = Path(source).expanduser()
        if not path.is_absolute():
            raise InvalidInput(f"source {source!r} must be an absolute path")
        if not within_roots(_static_prefix(path), roots):
            raise InvalidInput(
                f"source {source!r} is outside the allowed roots "
                f"({', '.join(map(str, roots))}); set data.allowed_roots to add one"
            )
        matches = sorted(glob.glob(str(path))) if _is_glob(source) else [str(path)]
        matches = [m for m in matches if Path(m).exists()]
        if not matches:
            raise InvalidInput(f"source {source!r} matches no file")
        for match in matches:
            if not within_roots(Path(match), roots):
                raise InvalidInput(f"{match} leads outside the allowed roots")
            found.append(Path(match).resolve())
    return found


def _is_glob(source: str) -> bool:
    return any(c in source for c in _GLOB_CHARS)


def _static_prefix(path: Path) -> Path:
    """The part of a glob before its first wildcard: where its matches can live."""
    parts: list[str] = []
    for part in path.parts:
        if _is_glob(part):
            break
        parts.append(part)
    return Path(*parts)


class DatasetRegistry:
    def __init__(self, sessions: sessionmaker[Session], roots: Sequence[Path]) -> None:
        self._sessions = sessions
        self.roots = [Path(r).resolve() for r in roots]

    def add(
        self,
        dataset_id: str,
        sources: Sequence[str],
        *,
        title: str | None = None,
        chunks: Mapping[str, int] | None = None,
        concat_dim: str = "time",
        owner: str | None = None,
        replace: bool = False,
    ) -> Registration:
        validate_id(dataset_id)
        if not _DIM.match(concat_dim):
            raise InvalidInput(f"invalid concat dimension {concat_dim!r}")
        if title is not None and len(title) > 255:
            raise InvalidInput("title is longer than 255 characters")
        expand_sources(sources, self.roots)
        normalized = [str(Path(s).expanduser()) for s in sources]
        options = {"chunks": dict(chunks or {}), "concat_dim": concat_dim}
        now = utcnow()
        with self._sessions.begin() as s:
            row = s.get(DatasetRow, dataset_id)
            if row is not None and not replace:
                raise Conflict(f"dataset {dataset_id!r} is already registered")
            if row is None:
                row = DatasetRow(id=dataset_id, created_at=now)
                s.add(row)
            row.title = title or dataset_id
            row.sources = normalized
            row.options = options
            row.owner = owner
            row.updated_at = now
            s.flush()
            return _registration(row)

    def get(self, dataset_id: str) -> Registration:
        with self._sessions() as s:
            row = s.get(DatasetRow, dataset_id)
            if row is None:
                raise NotFound(f"no dataset {dataset_id!r}")
            return _registration(row)

    def all(self) -> list[Registration]:
        with self._sessions() as s:
            return [_registration(r) for r in s.scalars(select(DatasetRow).order_by(DatasetRow.id))]

    def ids(self) -> list[str]:
        with self._sessions() as s:
            return list(s.scalars(select(DatasetRow.id).order_by(DatasetRow.id)))

    def remove(self, dataset_id: str) -> None:
        with self._sessions.begin() as s:
            row = s.get(DatasetRow, dataset_id)
            if row is None:
                raise NotFound(f"no dataset {dataset_id!r}")
            s.delete(row)


def _registration(row: DatasetRow) -> Registration:
    return Registration(
        id=row.id,
        title=row.title,
        sources=tuple(row.sources),
        chunks=dict(row.options.get("chunks", {})),
        concat_dim=str(row.options.get("concat_dim", "time")),
        owner=row.owner,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
