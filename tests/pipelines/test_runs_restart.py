"""A server killed mid-run and started again: the run continues and finishes, complete
tasks are not rerun, the task that was running (its process left behind, stopped) runs
again, and the post-run archive happens. And the e-mail a run's end sends, through a
real SMTP server on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tarfile
import textwrap
import time
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from strato.pipelines.records import PostSteps, RunState, TaskState
from tests.pipelines.runs_helpers import (
    ALICE,
    PATIENCE,
    db_url,
    open_store,
    service,
    task,
    workflow,
)

pytestmark = pytest.mark.asyncio
__all__ = ["db_url"]

# The server's side: submits the run, then serves until it is killed.
SERVER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from tests.pipelines.runs_helpers import service, task, workflow

    B = "echo b >> ran; [ -e b.pid ] || { echo $$ > b.pid; sleep 60; }"

    async def main():
        runs = service(sys.argv[1], Path(sys.argv[2]), archive_to=sys.argv[3])
        flow = workflow(
            [task("a", "echo a >> ran"), task("b", B), task("c", "echo c >> ran")],
            {"b": ["a"], "c": ["b"]},
        )
        run = await runs.submit(flow, pipeline="p@1", config={}, submitter="alice")
        print(run.id, flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()


async def test_a_server_killed_mid_run_continues_it_when_started_again(
    db_url: str, tmp_path: Path
) -> None:
    archives = tmp_path / "archives"
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, db_url, str(tmp_path), str(archives)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert server.stdout is not None
        run_id = server.stdout.readline().strip()
        store = open_store(db_url)
        deadline = time.monotonic() + PATIENCE
        while True:  # until the database says b runs
            tasks = {t.name: t for t in store.tasks(run_id)}
            if tasks and tasks["b"].state == TaskState.running and tasks["b"].backend_id:
                break
            assert time.monotonic() < deadline, tasks
            await asyncio.sleep(0.05)
        assert tasks["a"].state == TaskState.complete
        server.send_signal(signal.SIGKILL)
        server.wait()
    finally:
        if server.poll() is None:
            server.kill()
    assert store.get(run_id).state == RunState.running
    project = Path(store.get(run_id).project)
    left_behind = int((project / "b.pid").read_text())
    assert alive(left_behind)  # the killed server's task goes on without it

    runs = service(db_url, tmp_path, archive_to=str(archives))
    try:
        assert await runs.start() == [run_id]
        done = await runs.wait(run_id, PATIENCE)
        assert done.state == RunState.succeeded, done.reason
        assert not alive(left_behind)  # stopped, not run twice at once
        # a was complete and is not rerun; b runs again, then c.
        assert (project / "ran").read_text().split() == ["a", "b", "b", "c"]
        finished = {t.name: t for t in await runs.tasks(ALICE, run_id)}
        assert finished["a"].attempts == 1
        assert finished["b"].attempts == 2
        archive = archives / f"{project.name}-{run_id}.tar.gz"
        assert done.steps["archive"] == str(archive)
        with tarfile.open(archive) as tar:
            ran = tar.extractfile(f"{project.name}/ran")
            assert ran is not None
            assert ran.read().split() == [b"a", b"b", b"b", b"c"]
    finally:
        await runs.close()


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = BytesParser(policy=default).parsebytes(envelope.content)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"


@pytest.fixture
def smtp() -> Any:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield f"smtp://127.0.0.1:{port}", inbox
    controller.stop()


async def test_the_end_of_a_run_is_mailed_and_again_after_a_retry(
    smtp: tuple[str, Inbox], tmp_path: Path
) -> None:
    url, inbox = smtp
    runs = service(
        f"sqlite:///{tmp_path / 'r.db'}",
        tmp_path,
        smtp_url=url,
        mail_from="pipelines@lab.example",
        archive_to=str(tmp_path / "archives"),
    )
    try:
        flow = workflow([task("check", "echo checking; test -e ok")])
        # The config's email is who is told, as Centro's required field says.
        run = await runs.submit(
            flow, pipeline="p@1", config={"email": "lab@example.org"}, submitter="alice"
        )
        failed = await runs.wait(run.id, PATIENCE)
        assert failed.state == RunState.failed
        [(sender, to, message)] = inbox.messages
        assert (sender, to) == ("pipelines@lab.example", ["lab@example.org"])
        assert message["Subject"] == f"strato: run {run.id} of p@1 failed"
        body = message.get_content()
        assert "task 'check' failed: exit code 1" in body
        assert "checking" in body
        assert failed.steps["notify"] == "sent to lab@example.org"
        assert "archive" not in failed.steps  # only a run that succeeded is archived

        (Path(run.project) / "ok").touch()
        await runs.retry(ALICE, run.id)
        done = await runs.wait(run.id, PATIENCE)
        assert done.state == RunState.succeeded
        assert len(inbox.messages) == 2
        message = inbox.messages[1][2]
        assert message["Subject"] == f"strato: run {run.id} of p@1 succeeded"
        assert f"Archived to: {done.steps['archive']}" in message.get_content()
        assert Path(done.steps["archive"]).exists()

        # Asked for explicitly: another address, no archive destination of its own.
        other = await runs.submit(
            workflow([task("t")]),
            pipeline="p@1",
            config={"email": "ignored@example.org"},
            submitter="alice",
            post=PostSteps(notify=("boss@example.org",)),
        )
        await runs.wait(other.id, PATIENCE)
        assert inbox.messages[2][1] == ["boss@example.org"]
    finally:
        await runs.close()
