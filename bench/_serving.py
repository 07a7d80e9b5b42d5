"""A real uvicorn server on a free loopback port, in a thread, for the benchmarks."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import uvicorn

from strato.server import bind


def setting_env(pairs: Sequence[str]) -> dict[str, str]:
    """``--setting section.key=value`` options as the ``STRATO_*`` variables of a server:
    ``data.fast_raw_chunks=false`` is ``STRATO_DATA_FAST_RAW_CHUNKS=false``."""
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SystemExit(
                f"--setting {pair!r}: expected KEY=VALUE, e.g. data.fast_raw_chunks=false"
            )
        env["STRATO_" + key.strip().upper().replace(".", "_")] = value
    return env


def add_setting_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting of the strato server, e.g. data.fast_raw_chunks=false (repeatable)",
    )


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve ``app`` while the block runs; yields its base URL."""
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


def nginx_exe() -> str | None:
    """nginx, if installed: a server of static files to measure ceilings with."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None
    )


def nginx_config(root: Path, port: int, rundir: Path) -> Path:
    """A config serving ``root`` on 127.0.0.1:``port``, in the foreground, files in ``rundir``."""
    conf = rundir / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""  # its workers must read our files
    conf.write_text(
        f"daemon off; {user} worker_processes 1; pid {rundir}/nginx.pid;\n"
        f"error_log {rundir}/nginx-error.log;\n"
        "events { worker_connections 1024; }\n"
        "http { access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;\n"
        "  default_type application/json;\n"
        f"  server {{ listen 127.0.0.1:{port}; root {root}; autoindex on; }} }}\n"
    )
    return conf


def _free_port() -> int:
    sock = bind("127.0.0.1", 0)
    port: int = sock.getsockname()[1]
    sock.close()
    return port


@contextlib.contextmanager
def _process_serving(
    proc: subprocess.Popen[bytes], base: str, probe: str, timeout: float, failed: Callable[[], str]
) -> Iterator[str]:
    """``base`` once ``probe`` answers there, until the block ends and ``proc`` is stopped;
    ``failed()`` says why when it exits or does not answer within ``timeout`` s."""
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(base + probe, timeout=5):  # noqa: S310 (loopback)
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(failed()) from None
                time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        proc.wait(30)


@contextlib.contextmanager
def nginx_serving(root: Path, rundir: Path, probe: str) -> Iterator[str | None]:
    """nginx serving ``root`` while the block runs; yields its base URL, or None without
    nginx. ``probe`` is a path that answers once it is up."""
    exe = nginx_exe()
    if exe is None:
        yield None
        return
    port = _free_port()
    conf = nginx_config(root, port, rundir)
    proc = subprocess.Popen(
        [exe, "-c", str(conf), "-e", str(rundir / "nginx-error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with _process_serving(
        proc, f"http://127.0.0.1:{port}", probe, 30, lambda: "nginx did not start"
    ) as base:
        yield base


@contextlib.contextmanager
def strato_serving(settings: dict[str, str], rundir: Path) -> Iterator[str]:
    """``strato api`` in a process of its own, as deployed, configured by ``settings``
    (``STRATO_*`` variables, on top of none from the caller); yields its base URL."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}
    env.update(settings)
    log = rundir / "strato-api.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "strato", "api", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    with _process_serving(
        proc,
        f"http://127.0.0.1:{port}",
        "/readyz",
        60,
        lambda: f"strato api did not start:\n{log.read_text()[-2000:]}",
    ) as base:
        yield base
