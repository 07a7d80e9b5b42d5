"""A read-only zarr store answering each key through a function: how the tests hand
strato's stores (ZarrView, RawStore) to zarr-python as a client would see them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable

from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    Store,
    SuffixByteRequest,
)
from zarr.core.buffer import Buffer, BufferPrototype

from strato.errors import InvalidInput, NotFound


class KeyStore(Store):
    """A key the function does not know is None (zarr's 'absent'), as a 404 would be."""

    supports_writes = False
    supports_deletes = False
    supports_partial_writes = False

    def __init__(self, read: Callable[[str], bytes], keys: Callable[[], list[str]] | None = None):
        super().__init__(read_only=True)
        self.read = read
        self.keys = keys

    @property
    def supports_listing(self) -> bool:  # type: ignore[override]
        return self.keys is not None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeyStore) and other.read == self.read

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        try:
            data = self.read(key)
        except NotFound:
            return None
        if isinstance(byte_range, RangeByteRequest):
            data = data[byte_range.start : byte_range.end]
        elif isinstance(byte_range, OffsetByteRequest):
            data = data[byte_range.offset :]
        elif isinstance(byte_range, SuffixByteRequest):
            data = data[-byte_range.suffix :]
        return prototype.buffer.from_bytes(data)

    async def get_partial_values(
        self, prototype: BufferPrototype, key_ranges: Iterable[tuple[str, ByteRequest | None]]
    ) -> list[Buffer | None]:
        return [await self.get(key, prototype, byte_range) for key, byte_range in key_ranges]

    async def exists(self, key: str) -> bool:
        try:
            self.read(key)
        except (NotFound, InvalidInput):
            return False
        return True

    async def set(self, key: str, value: Buffer) -> None:
        self._check_writable()

    async def delete(self, key: str) -> None:
        self._check_writable()

    async def list(self) -> AsyncIterator[str]:
        for key in self.keys() if self.keys else []:
            yield key

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        async for key in self.list():
            if key.startswith(prefix):
                yield key

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        seen: set[str] = set()
        async for key in self.list_prefix(prefix):
            child = key[len(prefix) :].split("/", 1)[0]
            if child not in seen:
                seen.add(child)
                yield child
