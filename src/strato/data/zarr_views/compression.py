"""How the chunks of a Zarr view are compressed: a choice checked once, and the codec
it names in the v2 and v3 metadata, so that any Zarr client decodes the chunks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numcodecs
import numpy as np

from strato.errors import InvalidInput


@dataclass(frozen=True)
class Compression:
    """How chunks are compressed; part of the metadata, so any Zarr client decodes them."""

    codec: Literal["zstd", "blosc-lz4", "none"] = "zstd"
    level: int = 1
    # Lossy, floats only; declared in the metadata so standard clients decode.
    bitround_keepbits: int | None = None

    def __post_init__(self) -> None:
        if self.codec not in ("zstd", "blosc-lz4", "none"):
            raise InvalidInput(
                f"compression codec {self.codec!r} is unknown; use zstd, blosc-lz4 or none"
            )
        top = 9 if self.codec == "blosc-lz4" else 22
        if not 0 <= self.level <= top:
            raise InvalidInput(
                f"compression level {self.level} is out of range: {self.codec} takes 0 to {top}"
            )
        if self.bitround_keepbits is not None and not 1 <= self.bitround_keepbits <= 52:
            raise InvalidInput(
                f"bitround_keepbits {self.bitround_keepbits} is out of range: "
                "keep 1 to 52 mantissa bits, or none for lossless"
            )

    def compressor(self) -> numcodecs.abc.Codec | None:
        if self.codec == "zstd":
            return numcodecs.Zstd(level=self.level)
        if self.codec == "blosc-lz4":
            return numcodecs.Blosc(
                cname="lz4", clevel=self.level, shuffle=numcodecs.Blosc.SHUFFLE, blocksize=0
            )
        return None

    def v3_codec(self, dtype: np.dtype[Any]) -> dict[str, Any] | None:
        if self.codec == "zstd":
            return {"name": "zstd", "configuration": {"level": self.level, "checksum": False}}
        if self.codec == "blosc-lz4":
            return {
                "name": "blosc",
                "configuration": {
                    "typesize": dtype.itemsize,
                    "cname": "lz4",
                    "clevel": self.level,
                    "shuffle": "shuffle",
                    "blocksize": 0,
                },
            }
        return None
