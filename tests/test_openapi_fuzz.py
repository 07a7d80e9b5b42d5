"""Schemathesis, a real OpenAPI client, sends property-based requests built from
strato's own OpenAPI document to a running server: whatever they are, no 5xx.

Besides the requests the document describes, hooks (:mod:`tests.fuzz_hostile`) send
deeply nested CQL2 filters to every operation that takes one and bodies beyond the
server's size limit to every operation that takes a JSON body. The server runs as
`strato api` in a process of its own, so a request that kills it shows as a dead
process at the end, not as a test run that vanished.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from strato.auth import ALL_SCOPES
from strato.context import Context
from strato.data.demo.ensure import ensure_demo
from strato.data.service import DataService
from strato.data.settings import DataSettings
from strato.settings import LogSettings, Settings
from tests.fuzz_hostile import MAX_BODY_BYTES
from tests.served import strato_api

MAX_EXAMPLES = 10
PASSWORD = "fuzzing-password"
ROOT = Path(__file__).resolve().parents[1]
PROCESS = "hello-world"


def finished_job(url: str) -> str:
    """The id of a job of ``PROCESS`` run to success by the fuzzer's user."""
    answer = httpx.post(
        f"{url}/processes-api/processes/{PROCESS}/execution",
        json={"inputs": {"name": "fuzz", "message": "hi"}},
        headers={"Prefer": "respond-async"},
        auth=("admin", PASSWORD),
        timeout=60,
    )
    assert answer.status_code == 201, answer.text
    job_id: str = answer.json()["jobID"]
    while True:
        status = httpx.get(
            f"{url}/processes-api/jobs/{job_id}", auth=("admin", PASSWORD), timeout=60
        ).json()
        if status["status"] not in ("accepted", "running"):
            assert status["status"] == "successful", status
            return job_id


@pytest.mark.timeout(900)
def test_no_server_errors(tmp_path: Path) -> None:
    data_dir = tmp_path / "state"
    settings = Settings(
        data_dir=data_dir,
        log=LogSettings(access=False),
        data=DataSettings(demo_scale="small"),
    )
    ctx = Context.open(settings)
    ctx.migrate()
    # A password, not a token: the fuzzer may well revoke every token it can list.
    ctx.identities.create_user("admin", password=PASSWORD, scopes=ALL_SCOPES)
    service = DataService(ctx.sessions, settings)
    [dataset_id, *_] = ensure_demo(service)
    service.close()
    ctx.close()
    st = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.fuzz_hostile",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    with strato_api(
        data_dir, STRATO_DATA_DEMO_SCALE="small", STRATO_MAX_BODY_BYTES=str(MAX_BODY_BYTES)
    ) as api:
        job_id = finished_job(api.url)
        # Real ids let the generated requests reach the routes' own checks, past 404: a
        # dataset, a process (its execution takes the fuzzed bodies) and a finished job
        # with its output (for the job and results routes and the Stratus door's rid).
        (tmp_path / "schemathesis.toml").write_text(
            "[parameters]\n"
            f'"path.dataset_id" = "{dataset_id}"\n'
            f'"path.processID" = "{PROCESS}"\n'
            f'"path.jobID" = "{job_id}"\n'
            f'"path.outputID" = "echo"\n'
            f'"query.rid" = "{job_id}"\n'
        )
        run = subprocess.run(
            [
                st,
                "run",
                f"{api.url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--seed",
                "1",
                "--auth",
                f"admin:{PASSWORD}",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=tmp_path,
            env=env,
        )
        assert api.alive(), f"the server died under the fuzzer: {api.died()}"
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert counts, run.stdout[-4000:]
    assert counts.group(1) == counts.group(2), run.stdout[-4000:]
    assert int(counts.group(1)) >= 300, run.stdout[-2000:]
    assert "Authentication failed" not in run.stdout, run.stdout[-4000:]
