"""Landing page, probes, metrics and self-hosted docs over real HTTP."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from strato.app import create_app
from strato.context import Context
from strato.settings import LogSettings, Settings
from tests.helpers import assert_problem


def test_landing_page_links_the_operations(http: httpx.Client) -> None:
    r = http.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    for href in ("/docs", "/openapi.json", "/healthz", "/metrics"):
        assert f'href="{href}"' in r.text
    assert http.get("/static/strato.css").status_code == 200


def test_health_and_readiness(http: httpx.Client) -> None:
    assert http.get("/healthz").json()["status"] == "ok"
    ready = http.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["schema"]


def test_readiness_fails_on_unmigrated_or_unreachable_database(
    tmp_path: Path, serve: Callable[[Any], str]
) -> None:
    fresh = Settings(data_dir=tmp_path / "fresh", log=LogSettings(access=False))
    with httpx.Client(base_url=serve(create_app(fresh))) as c:
        assert_problem(c.get("/readyz"), 503, "strato db upgrade")
    # A port nothing listens on: the readiness probe must say so, not hang or 500.
    gone = Settings(
        data_dir=tmp_path / "gone",
        database_url="postgresql://nobody@127.0.0.1:9/none?connect_timeout=2",  # type: ignore[arg-type]
        log=LogSettings(access=False),
    )
    with httpx.Client(base_url=serve(create_app(gone)), timeout=30) as c:
        assert_problem(c.get("/readyz"), 503, "database not reachable")
        assert c.get("/healthz").status_code == 200


def test_metrics_count_requests_by_route_template(http: httpx.Client, admin_token: str) -> None:
    auth = {"Authorization": f"Bearer {admin_token}"}
    http.delete("/api/tokens/abc", headers=auth)
    http.delete("/api/tokens/def", headers=auth)
    text = http.get("/metrics").text
    line = re.search(
        r'strato_http_requests_total\{method="DELETE",route="/api/tokens/\{token_id\}",'
        r'status="404"\} (\S+)',
        text,
    )
    assert line
    assert float(line.group(1)) == 2.0
    assert "strato_http_request_duration_seconds_bucket" in text


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_are_served_without_any_cdn(http: httpx.Client, path: str) -> None:
    page = http.get(path).text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets, page
    for asset in assets:
        assert asset.startswith("/"), f"external asset {asset}"
        assert http.get(asset).status_code == 200
    assert "strato" in http.get("/openapi.json").json()["info"]["title"]


def test_cors_is_configurable(
    settings: Settings, context: Context, serve: Callable[[Any], str]
) -> None:
    settings = settings.model_copy(update={"cors_origins": ["https://viewer.example"]})
    with httpx.Client(base_url=serve(create_app(settings, context=context))) as c:
        r = c.get("/healthz", headers={"Origin": "https://viewer.example"})
        assert r.headers["access-control-allow-origin"] == "https://viewer.example"
        other = c.get("/healthz", headers={"Origin": "https://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers


# What the platform does not have; the landing page, the API description and the
# command line must not promise it.
NOT_YET = ("web socket", "websocket")


def _promises(text: str) -> list[str]:
    prose = re.sub(r"<[^>]+>", " ", text).lower()
    return [claim for claim in NOT_YET if claim in prose]


def test_landing_page_describes_only_what_exists(http: httpx.Client) -> None:
    page = http.get("/")
    assert _promises(page.text) == [], page.text
    # What does exist is there.
    for what in ("Zarr", "STAC", "Processes"):
        assert what in page.text
    info = http.get("/openapi.json").json()["info"]
    assert _promises(f"{info.get('summary', '')} {info.get('description', '')}") == []


def test_command_line_help_describes_only_what_exists() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "strato", "--help"], capture_output=True, text=True, check=True
    )
    assert _promises(done.stdout) == [], done.stdout
