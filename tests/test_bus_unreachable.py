"""An event bus nobody answers, as users meet it: `strato up`, `strato playground up` and
`strato generate --publish` each say so in one line that names the bus (its password
masked) and what to do, never with a client library's traceback."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.served import run_strato
from tests.test_up import strato_up

PASSWORD = "s3cret-pw"


def closed_port() -> int:
    """A loopback port nothing listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def bus_url() -> str:
    return f"nats://user:{PASSWORD}@127.0.0.1:{closed_port()}"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}
    return {**clean, "STRATO_DATA_DIR": str(tmp_path / "home"), "STRATO_DATA_DEMO": "false"}


def assert_one_clear_line(stderr: str, port: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert PASSWORD not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert f"@127.0.0.1:{port}" in errors[0]
    assert "unreachable" in errors[0]


def test_up_says_once_that_the_bus_is_unreachable(tmp_path: Path, bus_url: str) -> None:
    port = bus_url.rsplit(":", 1)[1]
    with strato_up(tmp_path / "data", STRATO_BUS_URL=bus_url) as up:
        deadline = time.monotonic() + 30
        while "unreachable" not in up.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        # Let the node try again a few times (after 0.5, 1 and 2 s): each retry used to
        # print the NATS client's traceback.
        time.sleep(4)
        # Searches go on; readiness names the bus.
        assert httpx.get(f"{up.url}/stac/search", timeout=10).status_code == 200
        ready = httpx.get(f"{up.url}/readyz", timeout=10)
        assert ready.status_code == 503
        assert "bus" in ready.json()["checks"]
    log = up.log.read_text()
    assert "Traceback" not in log, log
    assert PASSWORD not in log, log
    said = [line for line in log.splitlines() if "unreachable" in line]
    assert len(said) == 1, log
    assert f"@127.0.0.1:{port}" in said[0]
    assert "STRATO_BUS_URL" in said[0]


def test_playground_refuses_to_start_on_an_unreachable_bus(
    tmp_path: Path, env: dict[str, str], bus_url: str
) -> None:
    done = run_strato("playground", "up", "--ports", "0,0,0", "--bus", bus_url, env=env)
    if done.returncode == 0:
        run_strato("playground", "down", env=env)
    assert done.returncode != 0, done.stdout + done.stderr
    assert "http://" not in done.stdout
    assert_one_clear_line(done.stderr, bus_url.rsplit(":", 1)[1])
    assert "--bus" in done.stderr
    # Nothing was left running.
    status = run_strato("playground", "status", env=env)
    assert status.returncode == 3, status.stdout + status.stderr


def test_generate_publish_says_in_one_line_that_the_bus_is_unreachable(
    env: dict[str, str], bus_url: str
) -> None:
    done = run_strato("generate", "5", "--publish", env={**env, "STRATO_BUS_URL": bus_url})
    assert done.returncode == 6, done.stdout + done.stderr
    assert_one_clear_line(done.stderr, bus_url.rsplit(":", 1)[1])
    assert "STRATO_BUS_URL" in done.stderr


def test_generate_publish_on_an_unreachable_kafka_says_it_in_one_line(
    env: dict[str, str],
) -> None:
    port = closed_port()
    done = run_strato(
        "generate", "5", "--publish", env={**env, "STRATO_BUS_URL": f"kafka://127.0.0.1:{port}"}
    )
    assert done.returncode == 6, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: event bus kafka://127.0.0.1:")
    assert "unreachable (Connection refused)" in lines[0]
