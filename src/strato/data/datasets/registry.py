"""Registrations of datasets: which files make a dataset, and how to serve them.

A registration is validated when made (ids, allowed roots, that the sources
exist) and saved only once its data opened (:mod:`strato.data.service`); whether the
files keep opening is the business of :mod:`strato.data.datasets.sources`, which marks a dataset
broken without affecting the others. A registration keeps the allowed roots it was
checked against, so a dataset added by ``strato data add`` with roots set for that
command only is served by a server whose own settings do not name them.
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

from strato.data.datasets.confine import check_path_text
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
    # Resolved roots the sources were checked against when registered; None for rows
    # registered before roots were kept (they are served within the server's roots).
    allowed_roots: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
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
    allowed_roots: tuple[str, ...] = ()
    created_at: datetime | None = None
    updated_at: datetime | None = None


def validate_id(dataset_id: str) -> str:
    if not _ID.fullmatch(dataset_id):
        raise InvalidInput(
            f"id: invalid dataset id {dataset_id!r}: 1-128 letters, digits, '.', '_' or '-', "
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
        if not _DIM.fullmatch(name) or not isinstance(size, int) or size < 1:
            raise InvalidInput(
                f"chunks: invalid chunk size {name!r}={size}: a dimension name and a positive "
                "integer"
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
        raise InvalidInput("sources: a dataset needs at least one source path or glob")
    for i, source in enumerate(sources):
        check_path_text(source, f"sources[{i}]")
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

    def prepare(
        self,
        dataset_id: str,
        sources: Sequence[str],
        *,
        title: str | None = None,
        chunks: Mapping[str, int] | None = None,
        concat_dim: str = "time",
        owner: str | None = None,
    ) -> Registration:
        """A validated registration, not saved yet: :meth:`save` it once its data opened."""
        validate_id(dataset_id)
        if not _DIM.fullmatch(concat_dim):
            raise InvalidInput(
                f"concat_dim: invalid dimension name {concat_dim!r}: a letter or '_', then "
                "up to 63 letters, digits, '_', '.' or '-'"
            )
        if title is not None:
            if len(title) > 255:
                raise InvalidInput("title: longer than 255 characters")
            if any(ord(c) < 32 and c not in "\t" for c in title):
                raise InvalidInput("title: control characters (such as NUL) are not allowed")
        expand_sources(sources, self.roots)
        return Registration(
            id=dataset_id,
            title=title or dataset_id,
            sources=tuple(str(Path(s).expanduser()) for s in sources),
            chunks=dict(chunks or {}),
            concat_dim=concat_dim,
            owner=owner,
            allowed_roots=tuple(str(r) for r in self.roots),
        )

    def save(self, reg: Registration, *, replace: bool = False) -> Registration:
        """Store ``reg``; Conflict if its id is taken and ``replace`` is not set."""
        now = utcnow()
        with self._sessions.begin() as s:
            row = s.get(DatasetRow, reg.id)
            if row is not None and not replace:
                raise Conflict(f"dataset {reg.id!r} is already registered")
            if row is None:
                row = DatasetRow(id=reg.id, created_at=now)
                s.add(row)
            row.title = reg.title
            row.sources = list(reg.sources)
            row.options = {"chunks": dict(reg.chunks), "concat_dim": reg.concat_dim}
            row.owner = reg.owner
            row.allowed_roots = list(reg.allowed_roots)
            row.updated_at = now
            s.flush()
            return _registration(row)

    def exists(self, dataset_id: str) -> bool:
        if not _ID.fullmatch(dataset_id):
            return False
        with self._sessions() as s:
            return s.get(DatasetRow, dataset_id) is not None

    def roots_of(self, reg: Registration) -> list[Path]:
        """Where ``reg``'s data may be read from: this process's roots and the ones the
        registration was checked against."""
        roots = list(self.roots)
        for root in reg.allowed_roots:
            path = Path(root)
            if path not in roots:
                roots.append(path)
        return roots

    def get(self, dataset_id: str) -> Registration:
        if not _ID.fullmatch(dataset_id):
            # Never sent to the database: PostgreSQL refuses NUL bytes with an error.
            raise NotFound(f"no dataset {dataset_id!r}")
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
        if not _ID.fullmatch(dataset_id):
            raise NotFound(f"no dataset {dataset_id!r}")
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
        allowed_roots=tuple(row.allowed_roots or ()),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
