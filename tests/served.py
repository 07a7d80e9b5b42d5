"""`strato api` in a process of its own, for tests whose input could kill a server: a
crash is then seen as one (an exit code and a log) instead of taking the test run with it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def run_strato(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`strato *args` run to its end as a user runs it, its output captured as text; the
    exit code is the caller's to check."""
    return subprocess.run(
        [sys.executable, "-m", "strato", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Api:
    url: str
    proc: subprocess.Popen[str]
    log: Path
    banner: str = ""

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
        return f"exit code {self.proc.poll()}; log: {self.log.read_text(errors='replace')[-2000:]}"


@contextmanager
def strato_serving(
    data_dir: Path, command: str, announced: Sequence[str], env_extra: Mapping[str, str]
) -> Iterator[Api]:
    """`strato <command> --port 0` on ``data_dir``, handed over once its banner has shown
    every one of ``announced`` and /healthz answers; stopped on exit.

    ``env_extra`` are ``STRATO_*`` settings; the caller's own ``STRATO_*`` are left out.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}
    env |= {"STRATO_DATA_DEMO": "false", **env_extra}
    # A file, not a pipe: nobody drains stderr while the server runs, and a full pipe blocks it.
    log = data_dir.parent / f"{data_dir.name}-{command}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "strato", "--data-dir", str(data_dir), command, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        api = Api("", proc, log)
        deadline = time.monotonic() + 60
        while not all(word in api.banner for word in announced):
            line = proc.stdout.readline()
            if not line or time.monotonic() > deadline:
                raise AssertionError(
                    f"strato {command} did not announce itself: {api.banner!r}; {api.died()}"
                )
            api.banner += line
        found = re.search(r"web:\s+(http://\S+)/", api.banner)
        assert found, api.banner
        api.url = found.group(1)
        deadline = time.monotonic() + 60
        while not api.alive():
            assert time.monotonic() < deadline, api.died()
            time.sleep(0.1)
        yield api
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def strato_api(data_dir: Path, **env_extra: str) -> AbstractContextManager[Api]:
    """`strato api --port 0` on ``data_dir`` (migrated by the caller), stopped on exit."""
    return strato_serving(
        data_dir, "api", ("health:",), {"STRATO_LOG_ACCESS": "false", **env_extra}
    )
