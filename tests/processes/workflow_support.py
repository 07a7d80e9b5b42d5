"""What the workflow tests share: a model file under the node's data directory, the
two-output workflow over it (a subset, its mean and its max over time) and the same
computed with xarray."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import xarray as xr

from tests.data.model_files import write_calendar_file
from tests.processes.conftest import Node

DOMAIN = {"lat": [-30, 30], "time": ["2000-01-01", "2001-12-31"]}


def data_dir(node: Node) -> Path:
    return node.gates.parent / "state"


def model_file(node: Node) -> Path:
    path = data_dir(node) / "workflow-tas.nc"
    if not path.exists():
        write_calendar_file(path, "noleap")
    return path


def two_outputs(path: Path) -> dict[str, Any]:
    """The explicit form: subset -> reduce mean, subset -> reduce max."""
    sub = {"step": "sub", "output": "result"}
    return {
        "steps": {
            "sub": {
                "process": "subset",
                "inputs": {"href": str(path), "variable": "tas", "domain": DOMAIN},
            },
            "mean": {
                "process": "reduce",
                "inputs": {"href": sub, "variable": "tas", "axes": ["time"], "method": "mean"},
            },
            "max": {
                "process": "reduce",
                "inputs": {"href": sub, "variable": "tas", "axes": ["time"], "method": "max"},
            },
        },
        "outputs": {"mean": {"step": "mean"}, "max": {"step": "max", "output": "result"}},
    }


def expected(path: Path) -> dict[str, xr.DataArray]:
    with xr.open_dataset(path) as ds:
        tas = ds.tas.sel(lat=slice(-30, 30), time=slice("2000-01-01", "2001-12-31")).load()
    return {"mean": tas.mean("time"), "max": tas.max("time")}


def wait_done(http: httpx.Client, node: Node, job_id: str, who: str = "ann") -> dict[str, Any]:
    while True:
        status = http.get(f"/jobs/{job_id}", headers=node.auth(who)).json()
        if status["status"] not in ("accepted", "running"):
            return status


def open_nc(path: Path) -> xr.Dataset:
    with xr.open_dataset(path) as ds:
        return ds.load()
