"""The server killed and restarted (issue 14, faults): its async jobs are still listed and
finish. A job that was running is run again while it has retries left (the default is
one), then failed saying the server stopped; a job that was waiting runs. The killed
server's worker processes do not keep running its jobs: each exits when its pipe to the
dead server closes, so that a rerun never races an orphan over the same job."""

from __future__ import annotations

import os
import secrets
import signal
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]
import pytest

from strato.auth import Scope
from strato.context import Context
from strato.settings import LogSettings, Settings
from tests.processes.conftest import install_plugin
from tests.served import Api, strato_api

# Long enough for a server to start and for an orphan's pipe to be seen closed; far
# shorter than a gate's own limit (strato_test_processes.MOST_SECONDS), so an orphan
# still waiting at its gate fails the test rather than timing out by itself.
DEADLINE = 60.0


@dataclass
class Site:
    data_dir: Path
    env: dict[str, str]
    token: str
    gates: Path

    def serve(self) -> Any:
        # Two workers, whatever the machine: three jobs are two running and one waiting.
        return strato_api(self.data_dir, STRATO_JOBS_WORKERS="2", **self.env)

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def site(tmp_path: Path) -> Site:
    plugin = tmp_path / "site"
    install_plugin(plugin)
    data_dir = tmp_path / "state"
    ctx = Context.open(Settings(data_dir=data_dir, log=LogSettings(access=False)))
    ctx.migrate()
    scopes = {Scope.READ, Scope.PROCESS}
    ctx.identities.create_user("ann", scopes=scopes)
    token = ctx.identities.create_token("ann", scopes).secret
    ctx.close()
    path = os.pathsep.join(filter(None, [str(plugin), os.environ.get("PYTHONPATH")]))
    gates = tmp_path / "gates"
    gates.mkdir()
    return Site(data_dir, {"PYTHONPATH": path}, token, gates)


def stored(site: Site) -> dict[str, tuple[str, int]]:
    """Each job's status and attempts as the database has them (what a restart reads),
    not as the server's memory does: the writer commits a moment after an event."""
    with closing(sqlite3.connect(site.data_dir / "strato.db")) as db:
        rows = db.execute("SELECT id, status, attempts FROM jobs").fetchall()
    return {job_id: (status, attempts) for job_id, status, attempts in rows}


def until(what: str, check: Any) -> Any:
    deadline = time.monotonic() + DEADLINE
    while not (found := check()):
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)
    return found


def job_workers(api: Api) -> list[psutil.Process]:
    return [
        child
        for child in psutil.Process(api.proc.pid).children(recursive=True)
        if "strato.jobs.local.worker" in " ".join(child.cmdline())
    ]


def kill(api: Api) -> None:
    """SIGKILL the server alone (not its process group: that is the test run's), then see
    its orphaned workers go by themselves."""
    workers = job_workers(api)
    assert workers, "the server runs no job worker"
    api.proc.send_signal(signal.SIGKILL)
    api.proc.wait(timeout=DEADLINE)
    _gone, alive = psutil.wait_procs(workers, timeout=DEADLINE)
    for orphan in alive:
        orphan.kill()
    assert not alive, f"workers outlived their server: {[p.pid for p in alive]}"


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as client:
        yield client


def listed(http: httpx.Client, api: Api, site: Site) -> dict[str, dict[str, Any]]:
    answer = http.get(f"{api.url}/processes-api/jobs", headers=site.auth())
    assert answer.status_code == 200, answer.text
    return {job["jobID"]: job for job in answer.json()["jobs"]}


def at_gates(http: httpx.Client, api: Api, site: Site) -> None:
    """Two jobs wait at their gates: their workers are inside the task, past its progress
    report (a worker still starting it would die at that report's broken pipe anyway)."""
    until(
        "two jobs waiting at their gates",
        lambda: (
            [j["message"] for j in listed(http, api, site).values()].count("waiting at the gate")
            == 2
        ),
    )


def test_jobs_survive_a_killed_server(http: httpx.Client, site: Site) -> None:
    gates: dict[str, Path] = {}
    with site.serve() as first:
        for name in ("one", "two", "three"):
            gate = site.gates / secrets.token_hex(8)
            answer = http.post(
                f"{first.url}/processes-api/processes/gate/execution",
                json={"inputs": {"path": str(gate), "name": name}},
                headers={**site.auth(), "Prefer": "respond-async"},
            )
            assert answer.status_code == 201, answer.text
            gates[answer.json()["jobID"]] = gate
        until(
            "two jobs running in the database",
            lambda: sorted(s for s, _ in stored(site).values()) == ["accepted", *["running"] * 2],
        )
        at_gates(http, first, site)
        kill(first)

    with site.serve() as second:
        jobs = listed(http, second, site)
        assert set(jobs) == set(gates)
        assert all(job["status"] in ("accepted", "running") for job in jobs.values()), jobs
        # The two that ran are run again (a retry each); the third waits its turn.
        rerun = until(
            "two jobs running again",
            lambda: sorted(job_id for job_id, s in stored(site).items() if s == ("running", 2)),
        )
        assert len(rerun) == 2
        waiting = set(gates) - set(rerun)
        assert {stored(site)[job_id] for job_id in waiting} == {("accepted", 0)}
        at_gates(http, second, site)
        kill(second)

    with site.serve() as third:
        for gate in gates.values():
            gate.touch()

        def finished() -> dict[str, dict[str, Any]] | None:
            jobs = listed(http, third, site)
            done = all(job["status"] not in ("accepted", "running") for job in jobs.values())
            return jobs if done else None

        jobs = until("every job finished", finished)
        assert set(jobs) == set(gates)
        # Out of retries, the twice-stopped jobs failed saying why.
        for job_id in rerun:
            assert jobs[job_id]["status"] == "failed", jobs[job_id]
            assert "the server stopped while it ran" in jobs[job_id]["message"], jobs[job_id]
            failed = http.get(f"{third.url}/processes-api/jobs/{job_id}", headers=site.auth())
            assert "attempt 2 of 2" in failed.json()["message"]
        # The one that waited through both restarts ran.
        for job_id in waiting:
            assert jobs[job_id]["status"] == "successful", jobs[job_id]
            results = http.get(
                f"{third.url}/processes-api/jobs/{job_id}/results", headers=site.auth()
            )
            assert results.status_code == 200, results.text
            assert results.json()["echo"] in ("one", "two", "three")
