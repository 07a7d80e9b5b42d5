"""strato.data's groupby diagnostics URLs run the climatology process when processes is on
(a job of the requesting user, in the job list), and data still answers them itself when
processes is switched off."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from strato.app import create_app
from strato.bootstrap import ensure_admin
from strato.context import Context
from strato.data.settings import DataSettings
from strato.settings import CapabilitiesSettings, LogSettings, Settings

DIAGNOSTIC = "/datasets/one/groupby/tas/time.month/mean"


def write_source(path: Path) -> xr.Dataset:
    rng = np.random.default_rng(11)
    ds = xr.Dataset(
        {"tas": (("time", "lat", "lon"), rng.normal(280, 5, (24, 3, 4)).astype("float32"))},
        coords={
            "time": pd.date_range("2000-01-01", periods=24, freq="MS"),
            "lat": np.linspace(-30, 30, 3),
            "lon": np.linspace(0, 270, 4),
        },
    )
    ds.to_netcdf(path)
    return ds


@pytest.fixture
def start(
    tmp_path: Path, serve: Callable[[Any], str]
) -> Iterator[Callable[..., tuple[httpx.Client, xr.Dataset]]]:
    """A node built in-process serving one dataset, ``one``; an admin's client to it."""
    opened: list[tuple[Context, httpx.Client]] = []

    def node(disabled: list[str]) -> tuple[httpx.Client, xr.Dataset]:
        files = tmp_path / "files"
        files.mkdir()
        source = write_source(files / "tas.nc")
        settings = Settings(
            data_dir=tmp_path / "state",
            log=LogSettings(access=False),
            data=DataSettings(allowed_roots=[files]),
            capabilities=CapabilitiesSettings(disabled=disabled),
        )
        ctx = Context.open(settings)
        ctx.migrate()
        admin = ensure_admin(ctx.identities, settings)
        assert admin is not None
        url = serve(create_app(settings, context=ctx))
        http = httpx.Client(
            base_url=url, timeout=120, headers={"Authorization": f"Bearer {admin.secret}"}
        )
        opened.append((ctx, http))
        r = http.post("/api/datasets", json={"id": "one", "sources": [str(files / "tas.nc")]})
        assert r.status_code == 201, r.text
        return http, source

    yield node
    for ctx, http in opened:
        http.close()
        ctx.close()


def check_climatology(http: httpx.Client, source: xr.Dataset, tmp_path: Path) -> None:
    r = http.get(DIAGNOSTIC, params={"format": "netcdf"})
    assert r.status_code == 200, r.text
    (tmp_path / "got.nc").write_bytes(r.content)
    with xr.open_dataset(tmp_path / "got.nc") as got:
        expected = source["tas"].groupby("time.month").mean()
        np.testing.assert_allclose(got["tas"].values, expected.values, rtol=1e-6)


def test_a_groupby_url_runs_the_climatology_process(start: Any, tmp_path: Path) -> None:
    http, source = start([])
    check_climatology(http, source, tmp_path)
    listed = http.get("/processes-api/jobs", params={"processID": "climatology"})
    assert listed.status_code == 200, listed.text
    [job] = listed.json()["jobs"]
    assert job["status"] == "successful"
    inputs = http.get(f"/processes-api/jobs/{job['jobID']}").json()
    assert inputs["processID"] == "climatology"
    # Its result is served like any job's.
    result = http.get(f"/processes-api/jobs/{job['jobID']}/results")
    assert result.status_code == 200, result.text


def test_with_processes_off_data_still_answers(start: Any, tmp_path: Path) -> None:
    http, source = start(["processes"])
    check_climatology(http, source, tmp_path)
    assert http.get("/processes-api/jobs").status_code == 404
