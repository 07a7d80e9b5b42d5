"""Nodes on loopback for the provider tests, shaped as Stratus deployed: a head node
serving its processes over ZeroMQ (`strato endpoint serve --zmq`, a subprocess), a
second strato node serving the OGC API over HTTP, and a portal routing ids by prefix
to both."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from strato.auth import Scope
from strato.context import Context
from strato.settings import LogSettings, Settings


@dataclass
class Head:
    address: str
    proc: subprocess.Popen[str]
    log: Path
    data_dir: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def prepare(data_dir: Path, users: dict[str, set[Scope]]) -> dict[str, str]:
    """A migrated data directory with ``users``; their tokens."""
    ctx = Context.open(Settings(data_dir=data_dir, log=LogSettings(access=False)))
    ctx.migrate()
    tokens = {}
    for user, scopes in users.items():
        ctx.identities.create_user(user, scopes=scopes)
        tokens[user] = ctx.identities.create_token(user, scopes).secret
    ctx.close()
    return tokens


def keys(directory: Path, name: str) -> tuple[Path, Path]:
    """`strato endpoint keys`: the public and secret key files of ``name``."""
    done = subprocess.run(
        [sys.executable, "-m", "strato", "endpoint", "keys", str(directory), "--name", name],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "public:" in done.stdout, done.stdout + done.stderr
    return directory / f"{name}.key", directory / f"{name}.key_secret"


@contextmanager
def zmq_head(data_dir: Path, server_secret: Path, allowed: Path) -> Iterator[Head]:
    """`strato endpoint serve --zmq` on a free port of loopback, until the block ends."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}
    env |= {"STRATO_DATA_DEMO": "false", "STRATO_LOG_ACCESS": "false"}
    log = data_dir.parent / f"{data_dir.name}-endpoint.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "strato",
            "--data-dir",
            str(data_dir),
            "endpoint",
            "serve",
            "--zmq",
            "tcp://127.0.0.1:*",
            "--key",
            str(server_secret),
            "--allow",
            str(allowed),
        ],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        banner = ""
        deadline = time.monotonic() + 60
        while "zmq:" not in banner:
            line = proc.stdout.readline()
            assert line, f"exit {proc.wait()}: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, banner
            banner += line
        found = re.search(r"zmq:\s+(tcp://\S+)", banner)
        assert found, banner
        yield Head(found.group(1), proc, log, data_dir)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
