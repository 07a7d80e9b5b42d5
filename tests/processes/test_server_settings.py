"""A server built in-process from a Settings object (as embedded deployments and tests build
it) runs its built-in processes with those settings: its job workers open the datasets
registered in its own database, under its own data directory and allowed roots, and not
whatever the worker's environment would name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import xarray as xr

from strato.app import create_app
from strato.bootstrap import ensure_admin
from strato.context import Context
from strato.data.settings import DataSettings
from strato.settings import LogSettings, Settings


def write_source(path: Path) -> xr.Dataset:
    rng = np.random.default_rng(7)
    ds = xr.Dataset(
        {"tas": (("time", "lat", "lon"), rng.normal(280, 5, (12, 4, 8)).astype("float32"))},
        coords={
            "time": pd.date_range("2000-01-01", periods=12, freq="MS"),
            "lat": np.linspace(-45, 45, 4),
            "lon": np.linspace(0, 315, 8),
        },
    )
    ds.to_netcdf(path)
    return ds


def test_an_in_process_server_runs_a_builtin_process_over_its_own_dataset(
    tmp_path: Path, serve: Callable[[Any], str]
) -> None:
    # Files outside the default data directory, allowed only by these settings: a worker
    # reading its environment's settings would find neither the dataset nor the root.
    files = tmp_path / "files"
    files.mkdir()
    source = write_source(files / "tas.nc")
    settings = Settings(
        data_dir=tmp_path / "state",
        log=LogSettings(access=False),
        data=DataSettings(allowed_roots=[files]),
    )
    ctx = Context.open(settings)
    try:
        ctx.migrate()
        admin = ensure_admin(ctx.identities, settings)
        assert admin is not None
        url = serve(create_app(settings, context=ctx))
        auth = {"Authorization": f"Bearer {admin.secret}"}
        with httpx.Client(base_url=url, timeout=120, headers=auth) as http:
            registered = http.post(
                "/api/datasets", json={"id": "mine", "sources": [str(files / "tas.nc")]}
            )
            assert registered.status_code == 201, registered.text
            answer = http.post(
                "/processes-api/processes/reduce/execution",
                json={"inputs": {"dataset": "mine", "variable": "tas", "axes": ["time"]}},
            )
            assert answer.status_code == 200, answer.text
            # One output, answered as itself: a reference to the result file.
            href = answer.json()["href"]
            result = http.get(href)
            assert result.status_code == 200, result.text
        out = tmp_path / "result.nc"
        out.write_bytes(result.content)
        with xr.open_dataset(out) as got:
            np.testing.assert_allclose(
                got["tas"].values, source["tas"].mean("time").values, rtol=1e-6
            )
    finally:
        ctx.close()
