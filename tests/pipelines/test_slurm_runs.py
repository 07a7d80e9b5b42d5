"""`strato api` on the Slurm backend, SIGKILLed while a task's Slurm job runs and started
again: the run continues and finishes, the job that ran through the kill is followed
(not submitted twice), the complete task is not run again, and the archive step
happens. Through Centro's API, as a user sees it."""

from __future__ import annotations

import tarfile
import time
from pathlib import Path
from typing import Any

import httpx

from strato.auth import Scope
from strato.context import Context
from strato.settings import LogSettings, Settings
from tests.pipelines.conftest import PATIENCE, backend_env, write_pipeline
from tests.served import strato_api

GATED = """\
__pipeline__:
  name: gated
  version: "1.0"
"""
GATED_MAIN = """\
- name: first
  cmd: echo first >> ran
- name: wait
  after: first
  cmd: |
    echo wait >> ran
    while [ ! -e gate ]; do sleep 0.1; done
- name: last
  after: wait
  cmd: echo last >> ran
"""
CONFIG = {
    "pipeline": "gated@1.0",
    "project": "KILLED",
    "email": "ann@example.org",
    "hpcAccount": "lab",
    "isilonPath": "/isilon/lab",
}


def get(url: str, token: str, path: str) -> Any:
    answer = httpx.get(f"{url}/api/v1{path}", auth=("ann", token), timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def until(what: str, check: Any) -> Any:
    deadline = time.monotonic() + PATIENCE
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_server_killed_mid_run_on_slurm_finishes_the_run_when_started_again(
    tmp_path: Path,
) -> None:
    env = backend_env("slurm")
    search = tmp_path / "pipelines"
    write_pipeline(search, "gated", GATED, GATED_MAIN)
    data_dir = tmp_path / "state"
    ctx = Context.open(Settings(data_dir=data_dir, log=LogSettings(access=False)))
    ctx.migrate()
    ctx.identities.create_user("ann", scopes={Scope.READ, Scope.RUN})
    token = ctx.identities.create_token("ann", {Scope.READ, Scope.RUN}).secret
    ctx.close()
    archives = tmp_path / "archives"
    env |= {
        "STRATO_PIPELINES_SEARCH_PATHS": str(search),
        "STRATO_PIPELINES_PROJECT_ROOT": str(tmp_path / "projects"),
        "STRATO_PIPELINES_ARCHIVE_TO": str(archives),
    }

    with strato_api(data_dir, **env) as first:
        answer = httpx.post(
            f"{first.url}/api/v1/new-run/", json=CONFIG, auth=("ann", token), timeout=30
        )
        assert answer.status_code == 201, answer.text
        run_id = answer.json()["id"]

        def waiting() -> Any:
            tasks = get(first.url, token, f"/runs/{run_id}/tasks")["tasks"]
            found = {t["name"]: t for t in tasks}
            return found if found["wait"]["state"] == "running" else None

        tasks = until("the task 'wait' runs on Slurm", waiting)
        assert tasks["first"]["state"] == "complete"
        project = Path(get(first.url, token, f"/runs/{run_id}")["project_dir"])
        until("its job has started", lambda: "wait" in (project / "ran").read_text().split())
        first.proc.kill()
        first.proc.wait(timeout=30)

    with strato_api(data_dir, **env) as again:
        # Taken up at start: the job that ran through the kill is followed.
        run = get(again.url, token, f"/runs/{run_id}")
        assert run["state"] == "running"
        (project / "gate").touch()
        run = until(
            "the run ends",
            lambda: (
                (r := get(again.url, token, f"/runs/{run_id}"))["state"] in ("succeeded", "failed")
                and r
            ),
        )
        assert run["state"] == "succeeded", run["reason"]
        assert (project / "ran").read_text().split() == ["first", "wait", "last"]
        tasks = {t["name"]: t for t in get(again.url, token, f"/runs/{run_id}/tasks")["tasks"]}
        assert [tasks[name]["attempts"] for name in ("first", "wait", "last")] == [1, 1, 1]
    [archive] = archives.iterdir()
    with tarfile.open(archive) as tar:
        ran = tar.extractfile(f"{project.name}/ran")
        assert ran is not None
        assert ran.read().split() == [b"first", b"wait", b"last"]
