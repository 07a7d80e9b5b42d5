"""The Stratus Request Specification door: the two-output workflow of test_workflows
written as a Stratus request runs as the same workflow, and its results are NetCDF that
xarray opens, equal to the OGC route's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import xarray as xr

from tests.processes.conftest import Node
from tests.processes.workflow_support import (
    DOMAIN,
    data_dir,
    expected,
    model_file,
    open_nc,
    two_outputs,
    wait_done,
)


@pytest.fixture
def http(node: Node) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=node.api.url, timeout=60) as client:
        yield client


def stratus_request(path: str) -> dict[str, Any]:
    lat, tim = DOMAIN["lat"], DOMAIN["time"]
    return {
        "domain": [
            {
                "name": "d0",
                "lat": {"start": lat[0], "end": lat[1], "system": "values"},
                "time": {"start": tim[0], "end": tim[1], "system": "timestamps"},
            }
        ],
        "input": [{"uri": f"file://{path}", "name": "tas:v0", "domain": "d0"}],
        "operation": [
            {"name": "xop:subset", "input": "v0", "result": "sub"},
            {"name": "xop:ave", "input": "sub", "axes": "t", "result": "mean"},
            {"name": "xop:max", "input": "sub", "axes": "t", "result": "max"},
        ],
    }


def follow(http: httpx.Client, node: Node, rid: str) -> dict[str, Any]:
    while True:
        status = http.get("/stratus/status", params={"rid": rid}, headers=node.auth("ann"))
        assert status.status_code == 200, status.text
        if status.json()["status"] not in ("queued", "executing"):
            return dict(status.json())
        time.sleep(0.05)  # a plain client's polling; the test asserts no timing


def test_the_stratus_door_runs_the_same_workflow(
    http: httpx.Client, node: Node, tmp_path: Path
) -> None:
    path = model_file(node)
    answer = http.post("/stratus/exe", json=stratus_request(str(path)), headers=node.auth("ann"))
    assert answer.status_code == 201, answer.text
    rid = answer.json()["rid"]
    status = follow(http, node, rid)
    assert status["status"] == "completed", status
    assert status["outputs"] == ["max", "mean"]
    assert [s["processID"] for s in status["steps"]] == ["subset", "reduce", "reduce"]
    # The same job under OGC API - Processes.
    ogc = http.get(f"/processes-api/jobs/{rid}", headers=node.auth("ann")).json()
    assert ogc["processID"] == "workflow"
    assert ogc["status"] == "successful"

    # The OGC route's run of the same workflow.
    with httpx.Client(base_url=node.url, timeout=60) as ogc_http:
        started = ogc_http.post(
            "/processes/workflow/execution",
            json={"inputs": two_outputs(path)},
            headers={**node.auth("ann"), "Prefer": "respond-async"},
        )
        wid = started.json()["jobID"]
        assert wait_done(ogc_http, node, wid)["status"] == "successful"

    want = expected(path)
    for name in ("mean", "max"):
        got = http.get(
            "/stratus/result", params={"rid": rid, "output": name}, headers=node.auth("ann")
        )
        assert got.status_code == 200, got.text
        assert got.headers["content-type"] == "application/x-netcdf"
        assert got.content.startswith(b"\x89HDF")  # NetCDF-4, not a pickle
        # As a user saves the answer and opens it (libnetcdf, what the base install has).
        saved = tmp_path / f"{name}.nc"
        saved.write_bytes(got.content)
        with xr.open_dataset(saved, engine="netcdf4") as ds:
            tas = ds.tas.load()
        np.testing.assert_allclose(tas.values, want[name].values, rtol=1e-6)
        ogc_result = open_nc(data_dir(node) / "jobs" / wid / f"{name}.nc")
        np.testing.assert_array_equal(tas.values, ogc_result.tas.values)
    # With two outputs, one must be named.
    unnamed = http.get("/stratus/result", params={"rid": rid}, headers=node.auth("ann"))
    assert unnamed.status_code == 400
    assert "max" in unnamed.json()["detail"]


def test_stratus_requests_are_checked_and_owned(http: httpx.Client, node: Node) -> None:
    path = str(model_file(node))
    bad_op = stratus_request(path)
    bad_op["operation"][1]["name"] = "xop:frobnicate"
    answer = http.post("/stratus/exe", json=bad_op, headers=node.auth("ann"))
    assert answer.status_code == 404
    assert "operation[1]" in answer.json()["detail"]
    dangling = stratus_request(path)
    dangling["operation"][1]["input"] = "nothing"
    answer = http.post("/stratus/exe", json=dangling, headers=node.auth("ann"))
    assert answer.status_code == 400
    assert "'nothing'" in answer.json()["detail"]
    # The scope of executing; another user's request is none.
    assert http.post("/stratus/exe", json=bad_op, headers=node.auth("rita")).status_code == 403
    answer = http.post("/stratus/exe", json=stratus_request(path), headers=node.auth("ann"))
    rid = answer.json()["rid"]
    other = http.get("/stratus/status", params={"rid": rid}, headers=node.auth("bob"))
    assert other.status_code == 404
    follow(http, node, rid)


def test_capabilities_name_the_operations(http: httpx.Client, node: Node) -> None:
    epas = http.get("/stratus/capabilities", params={"type": "epas"}).json()["epas"]
    assert {"xop:ave", "xop:max", "xop:subset", "xop:hello-world", "xop:gate"} <= set(epas)
    assert "xop:workflow" not in epas
