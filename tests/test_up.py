"""`strato up` as a user starts it: first start prints an admin token that works."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.helpers import assert_problem
from tests.served import Api, run_strato, strato_serving


@contextmanager
def strato_up(data_dir: Path, **env_extra: str) -> Iterator[Api]:
    """`strato up --port 0` in a subprocess, as a user runs it; stopped on exit."""
    with strato_serving(data_dir, "up", ("health:", "admin token"), env_extra) as up:
        # The token, when printed, is the line after the announcement.
        if up.banner.rstrip().endswith("):"):
            assert up.proc.stdout is not None
            up.banner += up.proc.stdout.readline()
        yield up


def test_first_start_prints_a_working_admin_token_once(tmp_path: Path) -> None:
    with strato_up(tmp_path) as up:
        url = up.url
        token = re.search(r"^\s+(strato_\S+)$", up.banner, flags=re.M)
        assert token, up.banner
        ok = httpx.get(f"{url}/api/me", headers={"Authorization": f"Bearer {token.group(1)}"})
        assert ok.status_code == 200
        assert ok.json()["user"] == "admin"
        assert_problem(httpx.get(f"{url}/api/me", headers={"Authorization": "Bearer nope"}), 401)

    token_file = tmp_path / "admin-token"
    assert token_file.read_text().strip() == token.group(1)
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600

    with strato_up(tmp_path) as up:
        assert "strato_" not in up.banner
        assert str(token_file) in up.banner


def test_json_logs_carry_the_request_id(tmp_path: Path) -> None:
    with strato_up(tmp_path, STRATO_LOG_FORMAT="json") as up:
        httpx.get(f"{up.url}/healthz", headers={"X-Request-ID": "trace-me-42"})
    err = up.log.read_text()
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert records, err
    mine = [r for r in records if r["request_id"] == "trace-me-42"]
    assert mine
    assert "GET /healthz 200" in mine[0]["message"]


def test_first_start_serves_the_demo_collection(tmp_path: Path) -> None:
    with strato_up(tmp_path, STRATO_DATA_DEMO="true", STRATO_DATA_DEMO_SCALE="small") as up:
        deadline = time.monotonic() + 120
        ids: list[str] = []
        while len(ids) < 3 and time.monotonic() < deadline:
            ids = httpx.get(f"{up.url}/datasets").json()
            time.sleep(0.5)
        assert set(ids) == {"cmip6-demo-tas-mon", "cmip6-demo-pr-mon", "cmip6-demo-tasmax-day"}
        import xarray as xr

        ds = xr.open_dataset(
            f"{up.url}/datasets/cmip6-demo-tas-mon/zarr/", engine="zarr", zarr_format=3
        )
        assert ds.tas.attrs["units"] == "K"
        assert float(ds.tas.mean()) > 200


def _up_once(data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}
    return run_strato(
        "--data-dir",
        str(data_dir),
        "up",
        "--port",
        "0",
        env={**env, "STRATO_DATA_DEMO": "false"},
        timeout=60,
    )


def _one_line_naming(done: subprocess.CompletedProcess[str], path: Path, what: str) -> None:
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "web:" not in done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error:")
    assert str(path) in lines[0]
    assert what in lines[0]
    assert "--data-dir" in lines[0]


def test_up_names_a_read_only_data_directory(tmp_path: Path) -> None:
    from tests.test_faults import read_only

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with read_only(data_dir):
        done = _up_once(data_dir)
    _one_line_naming(done, data_dir, "not writable")


def test_up_names_a_data_directory_it_cannot_create(tmp_path: Path) -> None:
    from tests.test_faults import read_only

    parent = tmp_path / "parent"
    parent.mkdir()
    with read_only(parent):
        done = _up_once(parent / "missing")
    _one_line_naming(done, parent / "missing", "cannot be created")
    # Under a file, not a directory.
    (tmp_path / "file").write_text("")
    done = _up_once(tmp_path / "file" / "data")
    _one_line_naming(done, tmp_path / "file" / "data", "cannot be created")
