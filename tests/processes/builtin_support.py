"""What the built-in process tests share: a task context double and model files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import xarray as xr

from strato.settings import Settings


class TaskCtx:
    """The members of strato.job_engine.TaskContext, recording what the task reports."""

    def __init__(self, result_dir: Path, settings: Settings, *, cancel: bool = False) -> None:
        self.job_id = "test-job"
        self._result_dir = result_dir
        self.settings = settings
        self.cancel = cancel
        self.reports: list[tuple[int, str]] = []

    @property
    def result_dir(self) -> Path:
        return self._result_dir

    def progress(self, percent: int, message: str = "") -> None:
        self.reports.append((percent, message))

    def cancelled(self) -> bool:
        return self.cancel


def open_result(ctx: TaskCtx, outputs: dict[str, Any]) -> xr.Dataset:
    """The result a task returned, opened the way a client opens it (loaded, closed)."""
    ref = outputs["result"]
    path = ctx.result_dir / ref["href"]
    assert path.exists()
    engine = "zarr" if ref["type"] == "application/vnd+zarr" else "netcdf4"
    with xr.open_dataset(path, engine=engine) as ds:
        return ds.load()
