"""What strato's shared web stack costs per request.

Serves the same trivial route from a bare FastAPI app and from strato's app
(request ids, metrics, access log off, problem handlers, CORS on), each with
uvicorn on loopback, and drives both with the same httpx client in one run.
Prints requests/s for each and the ratio strato/bare (1.0 = no overhead).
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from fastapi import FastAPI

from _serving import serving
from strato.app import create_app
from strato.context import Context
from strato.settings import LogSettings, Settings

REQUESTS = 3000
ROUNDS = 3


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
        with contextlib.ExitStack() as stack:
            servers = {
                "bare FastAPI": stack.enter_context(serving(bare)),
                "strato": stack.enter_context(serving(create_app(settings, context=ctx))),
            }
            results: dict[str, list[float]] = {name: [] for name in servers}
            for _ in range(ROUNDS):
                for name, url in servers.items():
                    results[name].append(rate(url))
        ctx.close()
    medians = {name: statistics.median(r) for name, r in results.items()}
    for name, value in medians.items():
        print(f"{name:14} {value:8.0f} requests/s (median of {ROUNDS} x {REQUESTS})")
    ratio = medians["strato"] / medians["bare FastAPI"]
    print(f"ratio strato/bare FastAPI: {ratio:.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
