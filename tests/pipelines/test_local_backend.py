"""The local backend with real processes: output, input, environment, exit codes,
signals, walltime, cancel, and processes a previous server left behind."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from strato.pipelines.backends.base import Launch
from strato.pipelines.backends.local import LocalBackend

pytestmark = pytest.mark.asyncio


def launch(tmp_path: Path, cmd: str, **extra: object) -> Launch:
    return Launch(
        run_id="r",
        task="t",
        attempt=1,
        cmd=cmd,
        cwd=tmp_path,
        log=tmp_path / "logs" / "t.1.log",
        **extra,  # type: ignore[arg-type]
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie no parent reaped yet has ended too.
    status = Path(f"/proc/{pid}/status").read_text()
    return "\nState:\tZ" not in status


async def eventually(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not within the time"
        await asyncio.sleep(0.02)


async def test_output_input_environment_and_exit_code(tmp_path: Path) -> None:
    bins = tmp_path / "bin"
    bins.mkdir()
    (bins / "greet").write_text('#!/bin/sh\necho "greetings from bin"\n')
    (bins / "greet").chmod(0o755)
    backend = LocalBackend()
    cmd = 'pwd; read line; echo "got $line"; echo oops >&2; greet; echo "$X"; exit 3'
    path = f"{bins}:{os.environ['PATH']}"
    backend_id = await backend.start(
        launch(tmp_path, cmd, stdin="hello\n", env={"X": "from env", "PATH": path})
    )
    ended = await backend.wait(backend_id)
    assert ended.exit_code == 3
    assert not ended.ok
    assert ended.reason == ""
    log = (tmp_path / "logs" / "t.1.log").read_text()
    assert log.splitlines() == [
        str(tmp_path),
        "got hello",
        "oops",
        "greetings from bin",
        "from env",
    ]
    ok = await backend.wait(await backend.start(launch(tmp_path, "true")))
    assert ok.ok
    await backend.close()


async def test_killed_by_sigkill(tmp_path: Path) -> None:
    backend = LocalBackend()
    ended = await backend.wait(await backend.start(launch(tmp_path, "echo before; kill -9 $$")))
    assert ended.exit_code is None
    assert ended.reason == "killed by signal 9"
    assert not ended.ok
    await backend.close()


async def test_walltime_kills_the_whole_process_group(tmp_path: Path) -> None:
    backend = LocalBackend(kill_grace=0.5)
    cmd = "sleep 60 & echo $! > child.pid; wait"
    started = time.monotonic()
    backend_id = await backend.start(launch(tmp_path, cmd, walltime_s=0.5))
    ended = await backend.wait(backend_id)
    assert ended.reason == "walltime"
    assert time.monotonic() - started < 5
    child = int((tmp_path / "child.pid").read_text())
    await eventually(lambda: not alive(child))
    await backend.close()


async def test_cancel_and_a_task_that_ignores_sigterm(tmp_path: Path) -> None:
    backend = LocalBackend(kill_grace=0.3)
    cmd = "trap '' TERM; echo ready > ready; while true; do sleep 0.05; done"
    backend_id = await backend.start(launch(tmp_path, cmd))
    await eventually(lambda: (tmp_path / "ready").exists())
    await backend.cancel(backend_id)
    ended = await asyncio.wait_for(backend.wait(backend_id), 10)
    assert ended.reason == "cancelled"
    assert not ended.ok
    await backend.close()


async def test_a_missing_directory_is_a_backend_error(tmp_path: Path) -> None:
    from strato.pipelines.backends.base import BackendError

    backend = LocalBackend()
    with pytest.raises(BackendError, match="could not be started"):
        await backend.start(
            Launch("r", "t", 1, "true", cwd=tmp_path / "nowhere", log=tmp_path / "t.log")
        )


async def test_a_process_left_by_a_previous_server_is_stopped_not_adopted(
    tmp_path: Path,
) -> None:
    before = LocalBackend()
    backend_id = await before.start(launch(tmp_path, "echo $$ > pid; sleep 60"))
    await eventually(lambda: (tmp_path / "pid").exists() and (tmp_path / "pid").read_text())
    pid = int((tmp_path / "pid").read_text())
    after = LocalBackend()  # the next server: no child of its own
    assert await after.adopt(backend_id) is False
    await eventually(lambda: not alive(pid))
    # Its own attempts it follows; an id it never gave out it does not know.
    own = await after.start(launch(tmp_path, "true"))
    assert await after.adopt(own) is True
    assert await after.adopt("12345:feedface") is False
    await after.wait(own)
    await before.close()
    await after.close()


async def test_many_attempts_at_once_end_each_with_its_own_code_and_leave_no_descriptor(
    tmp_path: Path,
) -> None:
    backend = LocalBackend()
    await backend.wait(await backend.start(launch(tmp_path, "true")))  # its threads started
    descriptors = len(os.listdir("/proc/self/fd"))
    launches = [
        replace(launch(tmp_path, f"exit {i % 7}"), task=f"t{i}", log=tmp_path / f"t{i}.1.log")
        for i in range(60)
    ]
    ids = await asyncio.gather(*(backend.start(each) for each in launches))
    assert len(set(ids)) == 60
    ended = await asyncio.gather(*(backend.wait(backend_id) for backend_id in ids))
    assert [e.exit_code for e in ended] == [i % 7 for i in range(60)]
    # None left behind (fewer is fine: what earlier tests left open may be collected meanwhile).
    assert len(os.listdir("/proc/self/fd")) <= descriptors
    await backend.close()
