"""Nodes on loopback for the provider tests, shaped as Stratus deployed: a head node
serving its processes over ZeroMQ (`strato endpoint serve --zmq`, a subprocess), a
second strato node serving the OGC API over HTTP, and a portal routing ids by prefix
to both (the ``portal`` fixture, module-scoped where a test module imports it)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from strato.auth import Scope
from strato.context import Context
from strato.settings import LogSettings, Settings
from tests.served import Api, strato_api


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


USERS = {"ann": {Scope.READ, Scope.PROCESS}}


@dataclass
class Portal:
    api: Api
    token: str
    head: Head
    remote: Api
    remote_token: str

    @property
    def url(self) -> str:
        return self.api.url + "/processes-api"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    root = tmp_path_factory.mktemp("providers")
    allowed = root / "allowed"
    allowed.mkdir()
    _, server_secret = keys(root / "server", "server")
    portal_public, portal_secret = keys(root / "portal", "portal")
    (allowed / portal_public.name).write_text(portal_public.read_text())
    prepare(root / "head", {})
    remote_tokens = prepare(root / "remote", USERS)
    tokens = prepare(root / "portal-node", USERS)
    with (
        zmq_head(root / "head", server_secret, allowed) as head,
        strato_api(root / "remote") as remote,
    ):
        providers = [
            {
                "prefix": "head:*",
                "kind": "zmq",
                "address": head.address,
                "server_key": str(root / "server" / "server.key"),
                "client_key": str(portal_secret),
            },
            {
                "prefix": "remote:",
                "kind": "ogc",
                "url": remote.url + "/processes-api",
                "token": remote_tokens["ann"],
            },
        ]
        with strato_api(
            root / "portal-node", STRATO_PROCESSES_PROVIDERS=json.dumps(providers)
        ) as api:
            yield Portal(api, tokens["ann"], head, remote, remote_tokens["ann"])
