"""The byte budget of plots and diagnostics: refuse before reading, not after."""

from __future__ import annotations

import xarray as xr

from strato.errors import PayloadTooLarge

_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB")


def size_of(obj: xr.DataArray | xr.Dataset) -> int:
    """Bytes the data variables of ``obj`` occupy once read and decoded."""
    arrays = [obj.variable] if isinstance(obj, xr.DataArray) else list(obj.data_vars.values())
    # size times itemsize from the metadata: asking a lazy backend array for nbytes may not be
    # free, and this must never touch the data.
    return sum(int(a.size) * a.dtype.itemsize for a in arrays)


def human(n: int) -> str:
    """1.0 GiB, 512.0 KiB, 12 bytes."""
    value = float(n)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def check_budget(obj: xr.DataArray | xr.Dataset, limit: int, what: str) -> None:
    """Raise PayloadTooLarge if reading ``obj`` would take more than ``limit`` bytes."""
    size = size_of(obj)
    if size > limit:
        raise PayloadTooLarge(
            f"{what} would read {human(size)} ({size} bytes), more than the limit of "
            f"{human(limit)} ({limit} bytes)"
        )
