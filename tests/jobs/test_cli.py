"""`strato jobs list|show|cancel` read and mark the database; they start no worker."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from strato.job_engine import JobStatus
from tests.jobs.conftest import PATIENCE, MakeEngine


def strato(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "strato", "--data-dir", str(data_dir), "jobs", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_jobs_are_listed_shown_and_cancelled_from_the_command_line(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    engine = make_engine()
    done = engine.submit(task="tests.jobs.tasks:echo", inputs={"x": 1}, owner="a", process_id="e")
    asyncio.run(engine.wait(done.id, PATIENCE))
    # Left waiting: the engine stops before its worker takes it.
    engine.executor.close()
    waiting = engine.submit(task="tests.jobs.tasks:echo", inputs={}, owner="b", process_id="e")
    engine.close()
    data_dir = tmp_path / "data"

    listed = strato(data_dir, "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [
        [waiting.id, "accepted"],
        [done.id, "successful"],
    ]
    assert strato(data_dir, "list", "--owner", "a").stdout.split()[0] == done.id

    shown = strato(data_dir, "show", done.id)
    assert json.loads(shown.stdout)["results"] == {"echo": {"x": 1}, "job": done.id}
    assert strato(data_dir, "show", "nope").returncode != 0

    cancelled = strato(data_dir, "cancel", waiting.id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert engine.store.get(waiting.id).status == JobStatus.dismissed
    assert "already successful" in strato(data_dir, "cancel", done.id).stdout
