"""One control server per state directory: a second data server on it is refused at its
reap (which would stop the first's forwarders), naming the directory, until the first
closes; `strato stream serve` on a taken state directory says so in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from strato.stream.dataserver.base import DataServerError
from strato.stream.dataserver.builtin import BuiltinDataServer
from tests.stream.support import free_ports

pytestmark = pytest.mark.asyncio


async def test_a_second_data_server_on_a_state_directory_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "builtin"
    first, second = BuiltinDataServer(state), BuiltinDataServer(state)
    assert await first.reap() == []
    with pytest.raises(DataServerError, match="used by another control server"):
        await second.reap()
    await first.close_all()
    assert await second.reap() == []  # free once the first has closed
    await second.close_all()


async def test_strato_stream_serve_on_a_taken_state_directory_says_why(tmp_path: Path) -> None:
    state = tmp_path / "stream"
    held = BuiltinDataServer(state / "builtin")
    await held.reap()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}
        env |= {"STRATO_STREAM_STATE_DIR": str(state), "STRATO_DATA_DEMO": "false"}
        port = free_ports(1)[0]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "strato",
                "--data-dir",
                str(tmp_path / "d"),
                "stream",
                "serve",
                "--listen",
                f"127.0.0.1:{port}",
                "--insecure",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    finally:
        await held.close_all()
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: {state / 'builtin'} is used by another control server: give each gateway "
        "on this machine its own stream.state_dir (or data directory)"
    ]
