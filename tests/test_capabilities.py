"""The capability seam: discovery by entry point, order, switching off, failing to start."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from strato.app import create_app
from strato.capabilities import CapabilityFailed, installed, load_capabilities
from strato.context import Context
from strato.errors import InvalidInput
from strato.settings import LogSettings, Settings, settings_class

# A capability as a third party would ship it: a module, and a distribution's metadata
# naming it in the entry point group. BOOM_FAILS says where it fails.
BOOM_MODULE = """
import os
from contextlib import asynccontextmanager

if os.environ.get("BOOM_FAILS") == "import":
    raise ImportError("No module named 'boomdriver'")


class Boom:
    name = "boom"
    after = ("catalog",)
    settings_section = None
    migrations = None

    def nav(self):
        return []

    def install(self, app, ctx, auth):
        if os.environ.get("BOOM_FAILS") == "install":
            raise RuntimeError("the boom service is down\\nsecond line not shown")

    def register_cli(self, app):
        pass

    def on_start(self, ctx):
        pass

    def readiness(self, app, ctx):
        return []

    @asynccontextmanager
    async def lifespan(self, app):
        if os.environ.get("BOOM_FAILS") == "lifespan":
            raise ConnectionRefusedError("boom broker at 127.0.0.1:9 refused the connection")
        yield


capability = Boom()
"""


def forget_capabilities() -> None:
    installed.cache_clear()
    settings_class.cache_clear()


@pytest.fixture
def boom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The capability ``boom`` installed: its module and its dist-info on sys.path."""
    site = tmp_path / "site"
    (site / "boom_capability.py").parent.mkdir(parents=True)
    (site / "boom_capability.py").write_text(BOOM_MODULE)
    info = site / "strato_boom-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: strato-boom\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[strato.capabilities]\nboom = boom_capability:capability\n"
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("BOOM_FAILS", raising=False)
    forget_capabilities()
    yield site
    sys.modules.pop("boom_capability", None)
    forget_capabilities()


def settings_for(tmp_path: Path, **more: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", log=LogSettings(access=False), **more)


@pytest.fixture
def served(tmp_path: Path, serve: Callable[[Any], str]) -> Iterator[Callable[..., httpx.Client]]:
    contexts: list[Context] = []
    clients: list[httpx.Client] = []

    def start(**more: Any) -> httpx.Client:
        settings = settings_for(tmp_path, **more)
        ctx = Context.open(settings)
        contexts.append(ctx)
        ctx.migrate()
        client = httpx.Client(base_url=serve(create_app(settings, context=ctx)), timeout=30)
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.close()
    for ctx in contexts:
        ctx.close()


def test_capabilities_are_found_by_entry_point_in_their_order(boom: Path) -> None:
    # boom sorts first by name but asks to come after the catalog, which comes after data.
    assert [entry.name for entry in installed()] == [
        "data",
        "catalog",
        "boom",
        "jobs",
        "pipelines",
        "processes",
        "stream",
    ]


def test_with_the_catalog_switched_off_the_data_service_serves(
    served: Callable[..., httpx.Client],
) -> None:
    http = served(capabilities={"disabled": ["catalog"]})
    assert http.get("/readyz").json()["status"] == "ready"
    assert http.get("/datasets").status_code == 200
    assert http.get("/api/datasets").status_code == 200
    assert http.get("/stac/").status_code == 404
    assert http.get("/catalog").status_code == 404
    landing = http.get("/").text
    assert 'href="/datasets"' in landing
    assert 'href="/catalog"' not in landing


def test_with_data_switched_off_the_catalog_serves(served: Callable[..., httpx.Client]) -> None:
    http = served(capabilities={"disabled": ["data"]})
    assert http.get("/readyz").json()["status"] == "ready"
    assert http.get("/stac/").json()["type"] == "Catalog"
    assert http.get("/stac/search").status_code == 200
    assert http.get("/catalog").status_code == 200
    assert http.get("/datasets").status_code == 404


def test_capabilities_are_switched_off_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "STRATO_CAPABILITIES_DISABLED", "catalog, data, jobs, pipelines, processes, stream"
    )
    settings = settings_for(tmp_path)
    assert settings.capabilities.disabled == [
        "catalog",
        "data",
        "jobs",
        "pipelines",
        "processes",
        "stream",
    ]
    assert load_capabilities(settings) == []


def test_switching_off_what_is_not_installed_is_refused_by_name(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, capabilities={"disabled": ["catalgo"]})
    with pytest.raises(
        InvalidInput, match=r"catalgo.*installed: data, catalog, jobs, pipelines, processes"
    ):
        load_capabilities(settings)


def test_capability_sections_keep_their_keys_and_refuse_unknown_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRATO_CATALOG_MAX_LIMIT", "77")
    monkeypatch.setenv("STRATO_DATA_DEMO", "false")
    settings = settings_for(tmp_path)
    assert (settings.catalog.max_limit, settings.data.demo) == (77, False)
    with pytest.raises(ValidationError, match=r"catalog\.max_limit"):
        settings_for(tmp_path, catalog={"max_limit": 0})


def test_a_capability_that_fails_to_install_stops_the_start_in_one_line(
    boom: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOOM_FAILS", "install")
    settings = settings_for(tmp_path)
    with pytest.raises(CapabilityFailed) as failed:
        create_app(settings)
    assert failed.value.detail == "capability 'boom' failed to start: the boom service is down"
    # Switched off, it is left out and the rest starts.
    create_app(settings_for(tmp_path, capabilities={"disabled": ["boom"]}))


def run_strato(
    args: list[str], site: Path, tmp_path: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("STRATO_", "BOOM_"))}
    full.update(env, PYTHONPATH=str(site), STRATO_DATA_DEMO="false")
    return subprocess.run(
        [sys.executable, "-m", "strato", "--data-dir", str(tmp_path / "data"), *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("where", "cause"),
    [
        ("lifespan", "boom broker at 127.0.0.1:9 refused the connection"),
        ("import", "No module named 'boomdriver'"),
    ],
)
def test_strato_up_refuses_to_start_without_a_capability_that_fails(
    boom: Path, tmp_path: Path, where: str, cause: str
) -> None:
    done = run_strato(["up", "--port", "0"], boom, tmp_path, BOOM_FAILS=where)
    assert done.returncode == 6, done.stderr
    assert f"error: capability 'boom' failed to start: {cause}\n" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_a_failing_capability_switched_off_does_not_stop_the_others(
    boom: Path, tmp_path: Path
) -> None:
    done = run_strato(
        ["db", "upgrade"], boom, tmp_path, BOOM_FAILS="import", STRATO_CAPABILITIES_DISABLED="boom"
    )
    assert done.returncode == 0, done.stderr
    assert "catalog_" in done.stdout
