"""The slurm backend against a real single-node Slurm (scripts/slurm.sh, started by
scripts/ensure-services.sh): jobs run, end, time out, are cancelled, adopted by a new backend
and followed through a controller restart.

Skipped when no Slurm controller answers, unless STRATO_TEST_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from strato.pipelines.backends.base import BackendError, Ended, Launch
from strato.pipelines.backends.slurm import SlurmBackend
from strato.pipelines.settings import PipelinesSettings
from tests.conftest import need

ROOT = Path(__file__).resolve().parents[2]
SLURM_SH = ROOT / "scripts" / "slurm.sh"
STATE = Path(os.environ.get("STRATO_SLURM_STATE", "/var/lib/strato-slurm"))
# A bound against hanging, not a measurement: a trivial job ends within a few seconds.
PATIENCE = 60.0
POLL = 0.2


def slurm_answers() -> bool:
    if shutil.which("sbatch") is None:
        return False
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "is UP" in ping.stdout


@pytest.fixture(autouse=True)
def slurm() -> None:
    need("Slurm", slurm_answers(), "run scripts/slurm.sh start (scripts/ensure-services.sh does)")


@asynccontextmanager
async def backend(**settings: object) -> AsyncIterator[SlurmBackend]:
    pipelines = PipelinesSettings.model_validate({"slurm_poll": POLL, **settings})
    slurm = SlurmBackend(pipelines)
    try:
        yield slurm
    finally:
        await slurm.close()


def launch(tmp_path: Path, cmd: str, **fields: object) -> Launch:
    task = str(fields.pop("task", "t"))
    return Launch(
        run_id=f"r{uuid.uuid4().hex[:8]}",
        task=task,
        attempt=1,
        cmd=cmd,
        cwd=tmp_path,
        log=tmp_path / "logs" / f"{task}.log",
        **fields,  # type: ignore[arg-type]
    )


async def until(slurm: SlurmBackend, job_id: str) -> Ended:
    return await asyncio.wait_for(slurm.wait(job_id), PATIENCE)


async def job_fields(job_id: str) -> dict[str, str]:
    proc = await asyncio.create_subprocess_exec(
        "scontrol", "show", "job", "--oneliner", job_id, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    fields: dict[str, str] = {}
    for item in out.decode().split():
        key, _, value = item.partition("=")
        fields.setdefault(key, value)
    return fields


async def running(job_id: str) -> None:
    """Waits until Slurm runs the job (it is PENDING for up to a second after sbatch)."""
    for _ in range(int(PATIENCE / 0.1)):
        if (await job_fields(job_id)).get("JobState") == "RUNNING":
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} never ran")


async def script(*args: str) -> None:
    proc = await asyncio.create_subprocess_exec("bash", str(SLURM_SH), *args)
    assert await asyncio.wait_for(proc.wait(), PATIENCE) == 0, f"slurm.sh {args} failed"


@pytest.mark.asyncio
async def test_a_command_runs_in_its_directory_with_its_environment_and_its_log_holds_output(
    tmp_path: Path,
) -> None:
    cmd = 'echo "out $GREETING"; echo "err line" >&2; pwd; read -r line; echo "got $line"'
    async with backend() as slurm:
        attempt = launch(tmp_path, cmd, env={"GREETING": "hello 'world'"}, stdin="fed in\n")
        job_id = await slurm.start(attempt)
        ended = await until(slurm, job_id)
    assert ended == Ended(0, "", backend_id=job_id)
    assert ended.ok
    lines = attempt.log.read_text().splitlines()
    assert lines == ["out hello 'world'", "err line", str(tmp_path), "got fed in"]


@pytest.mark.asyncio
async def test_exit_codes_and_signals_are_reported(tmp_path: Path) -> None:
    async with backend() as slurm:
        failed = await slurm.start(launch(tmp_path, "exit 7", task="fails"))
        killed = await slurm.start(launch(tmp_path, "kill -9 $$", task="killed"))
        ended = await asyncio.gather(until(slurm, failed), until(slurm, killed))
    assert ended[0] == Ended(7, "", backend_id=failed)
    assert ended[1] == Ended(None, "killed by signal 9", backend_id=killed)
    assert not any(e.ok for e in ended)


@pytest.mark.asyncio
async def test_cpus_memory_walltime_and_name_reach_slurm(tmp_path: Path) -> None:
    attempt = launch(
        tmp_path,
        'echo "cpus $SLURM_CPUS_PER_TASK"; sleep 30',
        cpus=3,
        mem_mb=123,
        walltime_s=150,
    )
    async with backend() as slurm:
        job_id = await slurm.start(attempt)
        await running(job_id)
        fields = await job_fields(job_id)
        await slurm.cancel(job_id)
        await until(slurm, job_id)
    assert fields["NumCPUs"] == "3"
    assert fields["MinMemoryNode"] == "123M"
    assert fields["TimeLimit"] == "00:03:00"  # whole minutes, rounded up
    assert fields["JobName"] == f"{attempt.run_id}/t/1"
    assert attempt.log.read_text().splitlines()[0] == "cpus 3"


@pytest.mark.asyncio
async def test_a_running_job_is_cancelled(tmp_path: Path) -> None:
    attempt = launch(tmp_path, "echo started; sleep 600; echo never")
    async with backend() as slurm:
        job_id = await slurm.start(attempt)
        await running(job_id)
        await slurm.cancel(job_id)
        ended = await asyncio.wait_for(slurm.wait(job_id), 30)
        # Cancelling what already ended is no error.
        await slurm.cancel(job_id)
    assert ended == Ended(None, "cancelled", backend_id=job_id)
    assert (await job_fields(job_id))["JobState"] == "CANCELLED"
    assert "never" not in attempt.log.read_text()


@pytest.mark.asyncio
async def test_walltime_exceeded_ends_the_job_with_reason_walltime(tmp_path: Path) -> None:
    # Slurm's limits are whole minutes, checked every 30 s: this takes 60 to 95 s.
    async with backend() as slurm:
        job_id = await slurm.start(launch(tmp_path, "sleep 600", walltime_s=1))
        ended = await asyncio.wait_for(slurm.wait(job_id), 150)
    assert ended == Ended(None, "walltime", backend_id=job_id)


@pytest.mark.asyncio
async def test_a_new_backend_adopts_jobs_started_by_another(tmp_path: Path) -> None:
    long = launch(tmp_path, "sleep 3; echo finished", task="long")
    short = launch(tmp_path, "exit 4", task="short")
    async with backend() as first:
        long_id = await first.start(long)
        short_id = await first.start(short)
        assert await until(first, short_id) == Ended(4, "", backend_id=short_id)
    # The server restarted: the first backend is gone, the job still runs.
    async with backend() as second:
        assert await second.adopt(long_id)
        assert await second.adopt(short_id)  # ended jobs are known too
        assert not await second.adopt("999999999")
        ended = await asyncio.gather(until(second, long_id), until(second, short_id))
    assert list(ended) == [Ended(0, "", backend_id=long_id), Ended(4, "", backend_id=short_id)]
    assert long.log.read_text() == "finished\n"


@pytest.mark.asyncio
async def test_a_job_slurm_never_had_is_reported_lost() -> None:
    async with backend() as slurm:
        slurm.lost_after = 0.5
        ended = await until(slurm, "999999998")
    assert ended == Ended(None, "lost: Slurm no longer knows the job", backend_id="999999998")


@pytest.mark.asyncio
async def test_what_sbatch_refuses_is_a_backend_error_with_slurms_reason(tmp_path: Path) -> None:
    async with backend() as slurm:
        with pytest.raises(BackendError, match=r"sbatch refused huge: .*node configuration"):
            await slurm.start(launch(tmp_path, "true", task="huge", mem_mb=10**9))
    async with backend(slurm_partition="no-such-partition") as slurm:
        with pytest.raises(BackendError, match=r"sbatch refused t: .*[Ii]nvalid partition"):
            await slurm.start(launch(tmp_path, "true"))
    async with backend() as slurm:
        with pytest.raises(BackendError, match="not a Slurm job id"):
            await slurm.wait("1; rm -rf /")


@pytest.mark.asyncio
async def test_the_monitor_follows_a_job_through_a_controller_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    need(
        "scripts/slurm.sh's cluster",
        (STATE / "run" / "slurmctld.pid").exists(),
        f"this test restarts the controller scripts/slurm.sh started under {STATE}",
    )
    attempt = launch(tmp_path, "sleep 8; echo survived")
    # A monitor that took squeue's failure for a vanished job would give it up within 1 s.
    async with backend(slurm_poll=0.2) as slurm:
        slurm.lost_after = 1.0
        slurm.max_backoff = 1.0
        job_id = await slurm.start(attempt)
        await running(job_id)
        waiting = asyncio.ensure_future(slurm.wait(job_id))
        try:
            with caplog.at_level(logging.WARNING, "strato.pipelines.backends.slurm"):
                await script("kill", "slurmctld")
                # squeue gives up on an absent controller after about 9 s.
                for _ in range(int(PATIENCE / 0.2)):
                    if any("squeue" in r.getMessage() for r in caplog.records):
                        break
                    await asyncio.sleep(0.2)
                else:
                    raise AssertionError("the monitor never saw squeue fail")
                # A server restarting now adopts the job from the accounting.
                async with backend() as second:
                    assert await second.adopt(job_id)
                assert not waiting.done()
        finally:
            await script("start")
        ended = await asyncio.wait_for(waiting, PATIENCE)
    assert ended == Ended(0, "", backend_id=job_id)
    assert attempt.log.read_text() == "survived\n"
