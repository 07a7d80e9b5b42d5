"""What a fast-path middleware got to: itself, or the application behind it (which
answers 299 and records the path), driven in-process over ASGI."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

# The application's answer: not one a fast path gives.
APP_STATUS = 299


class FastPathProbe:
    def __init__(self, wrap: Callable[[ASGIApp], ASGIApp]) -> None:
        """``wrap``: the middleware under test, made around the recording application."""
        self.reached_app: list[str] = []
        self.fast = wrap(self._app)

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.reached_app.append(scope["path"])
        await send({"type": "http.response.start", "status": APP_STATUS, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def get(self, path: str, method: str = "GET", **headers: str) -> int:
        async def call() -> int:
            transport = httpx.ASGITransport(app=self.fast)
            async with httpx.AsyncClient(transport=transport, base_url="http://node") as c:
                return (await c.request(method, path, headers=headers)).status_code

        return asyncio.run(call())
