"""What strato's shared web stack costs per request.

Serves the same trivial route from a bare FastAPI app and from strato's app
(request ids, metrics, access log off, problem handlers, CORS on), each with
uvicorn on loopback, and drives both with the same httpx client in one run.
Prints requests/s for each and the ratio strato/bare (1.0 = no overhead).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from strato.app import create_app
from strato.context import Context
from strato.server import bind
from strato.settings import LogSettings, Settings

REQUESTS = 3000
ROUNDS = 3


def start(app: Any) -> tuple[str, uvicorn.Server, threading.Thread]:
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread


def rate(url: str) -> float:
    with httpx.Client(base_url=url) as client:
        for _ in range(200):
            client.get("/healthz")
        t0 = time.perf_counter()
        for _ in range(REQUESTS):
            client.get("/healthz").raise_for_status()
        return REQUESTS / (time.perf_counter() - t0)


def main() -> None:
    bare = FastAPI()

    @bare.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": "x"}

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            log=LogSettings(access=False),
            cors_origins=["https://viewer.example"],
        )
        ctx = Context.open(settings)
        ctx.migrate()
        servers = {"bare FastAPI": start(bare), "strato": start(create_app(settings, context=ctx))}
        results: dict[str, list[float]] = {name: [] for name in servers}
        for _ in range(ROUNDS):
            for name, (url, _, _) in servers.items():
                results[name].append(rate(url))
        for _, server, thread in servers.values():
            server.should_exit = True
            thread.join()
        ctx.close()
    medians = {name: statistics.median(r) for name, r in results.items()}
    for name, value in medians.items():
        print(f"{name:14} {value:8.0f} requests/s (median of {ROUNDS} x {REQUESTS})")
    ratio = medians["strato"] / medians["bare FastAPI"]
    print(f"ratio strato/bare FastAPI: {ratio:.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
