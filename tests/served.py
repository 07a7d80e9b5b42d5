"""`strato api` in a process of its own, for tests whose input could kill a server: a
crash is then seen as one (an exit code and a log) instead of taking the test run with it."""

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

import httpx


@dataclass
class Api:
    url: str
    proc: subprocess.Popen[str]
    log: Path

    def alive(self) -> bool:
        """The process runs and answers /healthz."""
        if self.proc.poll() is not None:
            return False
        try:
            return httpx.get(f"{self.url}/healthz", timeout=10).status_code == 200
        except httpx.TransportError:
            return False

    def died(self) -> str:
        """What to say when it is not alive: its exit code and the end of its log."""
        return f"exit code {self.proc.poll()}; log: {self.log.read_text()[-2000:]}"


@contextmanager
def strato_api(data_dir: Path, **env_extra: str) -> Iterator[Api]:
    """`strato api --port 0` on ``data_dir`` (migrated by the caller), stopped on exit.

    ``env_extra`` are ``STRATO_*`` settings; the caller's own ``STRATO_*`` are left out.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}
    env |= {"STRATO_DATA_DEMO": "false", "STRATO_LOG_ACCESS": "false", **env_extra}
    # A file, not a pipe: nobody drains stderr while the server runs.
    log = data_dir.parent / f"{data_dir.name}-api.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "strato", "--data-dir", str(data_dir), "api", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        banner = ""
        while "health:" not in banner:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"strato api did not start: {log.read_text()[-2000:]}")
            banner += line
        found = re.search(r"web:\s+(http://\S+)/", banner)
        assert found, banner
        api = Api(found.group(1), proc, log)
        deadline = time.monotonic() + 60
        while not api.alive():
            assert time.monotonic() < deadline, api.died()
            time.sleep(0.1)
        yield api
    finally:
        proc.terminate()
        proc.wait(timeout=30)
