"""Zarr stores that read only inside the allowed roots, for xarray to open sources with.

zarr's own ``LocalStore`` and fsspec's reference file system open whatever path they are
given and follow every symbolic link on it: a link inside a Zarr directory, or a reference
target swapped for a link after registration, would serve any file the server can read.
These stores read through :mod:`strato.data.datasets.confine` instead.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path

from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    Store,
    SuffixByteRequest,
)
from zarr.core.buffer import Buffer, BufferPrototype, default_buffer_prototype
from zarr.storage import LocalStore

from strato.data.datasets.confine import open_within, read_at
from strato.data.raw.raw_store import RawStore


def _slice(data: bytes, byte_range: ByteRequest | None) -> bytes:
    if byte_range is None:
        return data
    if isinstance(byte_range, RangeByteRequest):
        return data[byte_range.start : byte_range.end]
    if isinstance(byte_range, OffsetByteRequest):
        return data[byte_range.offset :]
    if isinstance(byte_range, SuffixByteRequest):
        return data[max(0, len(data) - byte_range.suffix) :]
    raise TypeError(f"unexpected byte range {byte_range!r}")


def _read_within(path: Path, roots: Sequence[str], byte_range: ByteRequest | None) -> bytes | None:
    """The bytes of a file of the store, None if there is no such file."""
    try:
        fd = open_within(str(path), roots)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None  # a directory of the store, or a pipe that would never end
        size = st.st_size
        # Ranges as reads of their own: a shard of Zarr v3 may be large.
        start, end = 0, size
        if isinstance(byte_range, RangeByteRequest):
            start, end = byte_range.start, min(byte_range.end, size)
        elif isinstance(byte_range, OffsetByteRequest):
            start = byte_range.offset
        elif isinstance(byte_range, SuffixByteRequest):
            start = max(0, size - byte_range.suffix)
        elif byte_range is not None:
            raise TypeError(f"unexpected byte range {byte_range!r}")
        # A file that shrank since its size was read reads as missing, not short.
        return read_at(fd, start, max(0, end - start))
    finally:
        os.close(fd)


class ConfinedLocalStore(LocalStore):
    """A read-only Zarr directory store whose files must lie within ``roots`` (resolved)."""

    def __init__(self, root: Path | str, *, roots: Sequence[str], read_only: bool = True) -> None:
        super().__init__(root, read_only=True)
        self.roots = list(roots)

    def with_read_only(self, read_only: bool = False) -> ConfinedLocalStore:
        return type(self)(self.root, roots=self.roots)

    def _get_confined(
        self, key: str, prototype: BufferPrototype | None, byte_range: ByteRequest | None
    ) -> Buffer | None:
        data = _read_within(self.root / key, self.roots, byte_range)
        if data is None:
            return None
        return (prototype or default_buffer_prototype()).buffer.from_bytes(data)

    def get_sync(
        self,
        key: str,
        *,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        self._ensure_open_sync()
        return self._get_confined(key, prototype, byte_range)

    async def get(
        self,
        key: str,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        if not self._is_open:
            await self._open()
        return await asyncio.to_thread(self._get_confined, key, prototype, byte_range)

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        return [await self.get(key, prototype, byte_range) for key, byte_range in key_ranges]


class ReferenceStore(Store):
    """A read-only Zarr v2 store over a checked reference set (:class:`RawStore`): the
    same keys, metadata and bytes that ``/kerchunk`` serves."""

    supports_writes = False
    supports_deletes = False
    supports_listing = True

    def __init__(self, raw: RawStore) -> None:
        super().__init__(read_only=True)
        self.raw = raw

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReferenceStore) and other.raw is self.raw

    def __hash__(self) -> int:
        return id(self.raw)

    def __str__(self) -> str:
        return f"strato-references://{id(self.raw):x}"

    async def get(
        self,
        key: str,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        where = self.raw.entry(key)
        if where is None:
            return None  # a chunk the file does not store: readers use the fill value
        data = where if isinstance(where, bytes) else await asyncio.to_thread(self.raw.read, key)
        return (prototype or default_buffer_prototype()).buffer.from_bytes(_slice(data, byte_range))

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        return [await self.get(key, prototype, byte_range) for key, byte_range in key_ranges]

    async def exists(self, key: str) -> bool:
        return self.raw.entry(key) is not None

    async def set(self, key: str, value: Buffer) -> None:
        self._check_writable()

    async def delete(self, key: str) -> None:
        self._check_writable()

    async def list(self) -> AsyncIterator[str]:
        keys = self.raw.keys()
        for key in keys:
            yield key

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        keys = self.raw.keys()
        for key in keys:
            if key.startswith(prefix):
                yield key

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        prefix = prefix.rstrip("/")
        head = f"{prefix}/" if prefix else ""
        seen: set[str] = set()
        keys = self.raw.keys()
        for key in keys:
            if key.startswith(head) and key != prefix:
                name = key[len(head) :].split("/")[0]
                if name not in seen:
                    seen.add(name)
                    yield name
