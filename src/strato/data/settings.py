"""The data capability's settings section: ``[data]`` in strato.toml, ``STRATO_DATA_*``."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from strato.settings import Section


class DataSettings(Section):
    key: ClassVar[str] = "data"

    allowed_roots: list[Path] = Field(
        default_factory=list,
        description="Directories datasets may be registered from; the data directory always is.",
    )
    byte_budget: int = Field(
        1 << 30,
        gt=0,
        description="Most bytes one plot or diagnostic may read; larger requests answer 413.",
    )
    # blosc-lz4 with byte shuffle: on model output it both compresses better than zstd-1
    # and decodes about three times faster, which is what a reading client waits on.
    compression: Literal["blosc-lz4", "zstd", "none"] = Field(
        "blosc-lz4", description="Codec of chunks served at /zarr."
    )
    compression_level: int | None = Field(
        None, ge=0, le=22, description="Level of that codec; default 5 for blosc-lz4, 1 for zstd."
    )
    bitround_keepbits: int | None = Field(
        None, ge=1, le=52, description="Keep this many mantissa bits of floats (lossy)."
    )
    cache_control: str = Field(
        "public, max-age=300", description="Cache-Control header of dataset responses."
    )
    open_datasets: int = Field(64, ge=1, description="How many opened datasets to keep cached.")
    broken_retry_seconds: float = Field(
        10.0,
        ge=0,
        description="A dataset that failed to open is tried again after this many seconds "
        "even if its files did not change (the failure may have been passing).",
    )
    demo: bool = Field(True, description="Generate and register demo data on first `strato up`.")
    # Fast paths: hand-written speed-ups around a framework, each answering exactly what
    # the plain path answers; off, the plain path answers (to rule one out, or compare).
    fast_raw_chunks: bool = Field(
        True,
        description="Answer anonymous GETs of /kerchunk chunks before FastAPI's routing "
        "(strato.data.api.fast_chunks); off: FastAPI answers every request.",
    )
    fast_dask_blocks: bool = Field(
        True,
        description="Compute a chunk of a dask-backed variable by running only its blocks' "
        "tasks (strato.data.zarr_views.fast_dask_blocks); off: dask computes it.",
    )

    @model_validator(mode="after")
    def _level_fits_codec(self) -> DataSettings:
        # zstd knows levels up to 22, blosc only up to 9.
        if (
            self.compression == "blosc-lz4"
            and self.compression_level is not None
            and self.compression_level > 9
        ):
            raise ValueError("compression_level must be 0-9 for blosc-lz4")
        return self

    @property
    def effective_level(self) -> int:
        if self.compression_level is not None:
            return self.compression_level
        return 5 if self.compression == "blosc-lz4" else 1

    demo_scale: Literal["full", "small"] = Field(
        "full", description="Demo collection size: full (decades, 1-degree) or small (quick)."
    )

    def roots(self, data_dir: Path) -> list[Path]:
        """Where datasets may be registered from: the data directory and the allowed roots."""
        return [data_dir.resolve(), *(p.resolve() for p in self.allowed_roots)]
