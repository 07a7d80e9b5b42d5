"""Problem details for every failure; no traceback ever reaches a client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from strato.app import create_app
from strato.context import Context
from strato.settings import Settings
from tests.helpers import assert_problem


def test_unknown_path_and_wrong_method(http: httpx.Client) -> None:
    assert_problem(http.get("/no/such/thing"), 404, "/no/such/thing")
    assert_problem(http.post("/healthz"), 405)


def test_validation_errors_name_the_field_path(http: httpx.Client, admin_token: str) -> None:
    auth = {"Authorization": f"Bearer {admin_token}"}
    body = assert_problem(http.post("/api/tokens", json={"scopes": ["read", 7]}, headers=auth), 422)
    assert body["errors"][0]["field"] == "body.scopes[1]"
    broken = http.post(
        "/api/tokens", content=b"{not json", headers={**auth, "content-type": "application/json"}
    )
    assert_problem(broken, 422)


def test_unexpected_exception_is_a_problem_without_traceback(
    settings: Settings, context: Context, serve: Callable[[Any], str]
) -> None:
    app = create_app(settings, context=context)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    with httpx.Client(base_url=serve(app)) as c:
        r = c.get("/boom")
    body = assert_problem(r, 500, r.headers["x-request-id"])
    assert "secret internals" not in r.text
    assert body["request_id"] == r.headers["x-request-id"]


def test_request_id_is_echoed_or_made(http: httpx.Client) -> None:
    assert (
        http.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    made = http.get("/healthz", headers={"X-Request-ID": "bad id\twith junk"}).headers[
        "x-request-id"
    ]
    assert made != "bad id\twith junk"
    assert len(made) == 32
