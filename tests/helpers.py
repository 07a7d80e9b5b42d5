"""Assertions shared by the HTTP tests."""

from __future__ import annotations

from typing import Any

import httpx


def assert_problem(r: httpx.Response, status: int, text: str = "") -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    assert {"type", "title", "detail", "instance"} <= body.keys()
    assert text in body["detail"]
    assert "Traceback" not in r.text
    return body
