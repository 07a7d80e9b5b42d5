"""Built-in processes through the API end to end: listed from their entry points, a
``reduce`` over a served demo dataset run asynchronously, and its result file opened by
xarray from the href the results document gives (NetCDF over byte ranges, Zarr), equal to
xarray computing the same directly; only the job's owner (or an administrator) reads it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import numpy as np
import pytest
import xarray as xr

from strato.auth import ALL_SCOPES, Scope
from strato.context import Context
from strato.data.demo.ensure import ensure_demo
from strato.data.service import DataService
from strato.settings import LogSettings, Settings
from tests.served import Api, strato_api

BUILTIN = ("subset", "reduce", "climatology", "anomaly", "resample", "difference")
DATASET = "cmip6-demo-tas-mon"


@dataclass
class Served:
    api: Api
    tokens: dict[str, str]
    demo: Path

    @property
    def url(self) -> str:
        return self.api.url + "/processes-api"

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("results")
    data_dir = root / "state"
    settings = Settings(data_dir=data_dir, log=LogSettings(access=False))
    ctx = Context.open(settings)
    ctx.migrate()
    tokens = {}
    for user, scopes in {
        "admin": ALL_SCOPES,
        "ann": {Scope.READ, Scope.PROCESS},
        "bob": {Scope.READ, Scope.PROCESS},
    }.items():
        ctx.identities.create_user(user, scopes=set(scopes))
        tokens[user] = ctx.identities.create_token(user, set(scopes)).secret
    data = DataService(ctx.sessions, settings)
    try:
        assert DATASET in ensure_demo(data, data_dir / "demo", scale="small")
    finally:
        data.close()
        ctx.close()
    with strato_api(data_dir) as api:
        yield Served(api, tokens, data_dir / "demo")


@pytest.fixture
def http(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=120) as client:
        yield client


def run_async(
    http: httpx.Client, served: Served, process: str, inputs: dict[str, Any], who: str = "ann"
) -> dict[str, Any]:
    """The results document of an asynchronous execution, once the job has finished."""
    answer = http.post(
        f"/processes/{process}/execution",
        json={"inputs": inputs},
        headers={**served.auth(who), "Prefer": "respond-async"},
    )
    assert answer.status_code == 201, answer.text
    job = answer.headers["Location"]
    while True:
        status = http.get(job, headers=served.auth(who)).json()
        if status["status"] not in ("accepted", "running"):
            break
    assert status["status"] == "successful", status.get("message")
    results = http.get(f"{job}/results", headers=served.auth(who))
    assert results.status_code == 200, results.text
    document: dict[str, Any] = results.json()
    return document


def with_login(href: str, user: str, token: str) -> str:
    """``href`` carrying HTTP Basic credentials (strato takes a token as the password):
    the way libnetcdf's byte-range reader is given them."""
    parts = urlsplit(href)
    return urlunsplit(parts._replace(netloc=f"{user}:{token}@{parts.netloc}"))


def direct_mean(served: Served) -> xr.DataArray:
    files = sorted(served.demo.rglob("tas_Amon_*.nc"))
    with xr.open_mfdataset(files, combine="by_coords") as ds:
        return ds["tas"].mean("time").load()


def test_the_builtin_processes_are_listed_and_described(http: httpx.Client, served: Served) -> None:
    listed = http.get("/processes", headers=served.auth("ann")).json()["processes"]
    by_id = {p["id"]: p for p in listed}
    assert set(BUILTIN) <= set(by_id)
    for pid in BUILTIN:
        assert by_id[pid]["description"]
        described = http.get(f"/processes/{pid}", headers=served.auth("ann")).json()
        assert "result" in described["outputs"]
        assert described["inputs"]["format"]["schema"]["enum"] == ["netcdf", "zarr"]
    assert "variable" in http.get("/processes/reduce").json()["inputs"]


def test_a_reduce_result_opens_in_xarray_from_its_href(http: httpx.Client, served: Served) -> None:
    results = run_async(
        http, served, "reduce", {"dataset": DATASET, "variable": "tas", "axes": ["time"]}
    )
    href = results["result"]["href"]
    assert href.startswith(served.url + "/jobs/")
    assert results["result"]["type"] == "application/x-netcdf"
    url = with_login(href, "ann", served.tokens["ann"]) + "#mode=bytes"
    with xr.open_dataset(url, engine="netcdf4") as ds:
        got = ds["tas"].load()
    expected = direct_mean(served)
    assert got.dims == expected.dims
    np.testing.assert_allclose(got.values, expected.values, rtol=1e-6)
    np.testing.assert_array_equal(got["lat"].values, expected["lat"].values)

    # The raw file, whole and by byte range.
    whole = http.get(href, headers=served.auth("ann"))
    assert whole.status_code == 200
    assert whole.headers["content-type"] == "application/x-netcdf"
    assert whole.content[:4] == b"\x89HDF"
    part = http.get(href, headers={**served.auth("ann"), "Range": "bytes=0-3"})
    assert part.status_code == 206
    assert part.content == b"\x89HDF"


def test_a_zarr_result_opens_with_the_zarr_engine(http: httpx.Client, served: Served) -> None:
    results = run_async(
        http,
        served,
        "reduce",
        {"dataset": DATASET, "variable": "tas", "axes": ["time"], "format": "zarr"},
    )
    href = results["result"]["href"]
    options = {"headers": served.auth("ann")}
    with xr.open_dataset(href, engine="zarr", storage_options=options) as ds:
        got = ds["tas"].load()
    np.testing.assert_allclose(got.values, direct_mean(served).values, rtol=1e-6)


def test_only_the_owner_or_an_administrator_reads_the_result(
    http: httpx.Client, served: Served
) -> None:
    results = run_async(
        http, served, "reduce", {"dataset": DATASET, "variable": "tas", "format": "zarr"}
    )
    href = results["result"]["href"]
    for path in (href, f"{href}/zarr.json", f"{href}/.zmetadata"):
        assert http.get(path, headers=served.auth("bob")).status_code == 404
        assert http.get(path).status_code in (401, 404)
    assert http.get(f"{href}/zarr.json", headers=served.auth("admin")).status_code == 200
    # Nothing outside the job's own directory.
    for escape in ("../../", "..%2F..%2F"):
        answer = http.get(f"{href}/{escape}state.db", headers=served.auth("ann"))
        assert answer.status_code == 404
