"""Shared fixtures: real databases, a real uvicorn server in a thread, a real browser.

A test that needs a service which is not running is skipped with the reason,
unless STRATO_TEST_REQUIRE_SERVICES=1 (CI), where it fails instead.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import MetaData, create_engine

from strato.app import create_app
from strato.bootstrap import ensure_admin
from strato.context import Context
from strato.db import normalize_url
from strato.server import bind
from strato.settings import LogSettings, Settings

REQUIRE_SERVICES = os.environ.get("STRATO_TEST_REQUIRE_SERVICES") == "1"
CHROMIUM = os.environ.get("STRATO_TEST_CHROMIUM", "/usr/bin/chromium")

PG = ("PostgreSQL", "127.0.0.1", 5432)
MARIADB = ("MariaDB", "127.0.0.1", 3306)


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def need(what: str, available: bool, hint: str) -> None:
    if available:
        return
    reason = f"{what} is not available ({hint})"
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason}; STRATO_TEST_REQUIRE_SERVICES=1 makes this a failure")
    pytest.skip(reason)


def need_service(name: str, host: str, port: int) -> None:
    need(name, reachable(host, port), f"nothing answers on {host}:{port}")


# --- databases ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    need_service(*PG)
    import psycopg

    name = f"strato_test_{secrets.token_hex(4)}"
    admin = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def mariadb_server_url() -> Iterator[str]:
    need_service(*MARIADB)
    import pymysql

    name = f"strato_test_{secrets.token_hex(4)}"
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="")
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    yield f"mysql://root@127.0.0.1:3306/{name}"
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


def empty_database(url: str) -> None:
    """Drop every table, so each test starts from an empty schema on a shared server DB."""
    engine = create_engine(normalize_url(url))
    meta = MetaData()
    meta.reflect(engine)
    meta.drop_all(engine)
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each of the three supported engines."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    url: str = request.getfixturevalue(
        f"{request.param.replace('postgresql', 'postgres')}_server_url"
    )
    empty_database(url)
    return url


# --- platform -------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", log=LogSettings(access=False))


@pytest.fixture
def context(settings: Settings) -> Iterator[Context]:
    ctx = Context.open(settings)
    ctx.migrate()
    yield ctx
    ctx.close()


@pytest.fixture
def admin_token(context: Context) -> str:
    issued = ensure_admin(context.identities, context.settings)
    assert issued is not None
    return issued.secret


class ThreadedServer:
    """A real uvicorn server on a free loopback port, in a background thread."""

    def __init__(self, app: Any) -> None:
        self.sock = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Any], str]]:
    """Start any ASGI app on loopback; returns its base URL. Stopped after the test."""
    servers: list[ThreadedServer] = []

    def start(app: Any) -> str:
        server = ThreadedServer(app).__enter__()
        servers.append(server)
        return server.url

    yield start
    for server in reversed(servers):
        server.__exit__()


@pytest.fixture
def app(settings: Settings, context: Context) -> FastAPI:
    return create_app(settings, context=context)


@pytest.fixture
def base_url(app: FastAPI, serve: Callable[[Any], str]) -> str:
    return serve(app)


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


# --- browser --------------------------------------------------------------------------


# Per test, not per session: Playwright's sync API keeps an event loop running in the main
# thread while it lives, which breaks later tests whose libraries call asyncio.run().
@pytest.fixture
def browser() -> Iterator[Any]:
    need(
        "Chromium",
        Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is not None,
        f"install Debian's chromium package or point STRATO_TEST_CHROMIUM at it ({CHROMIUM})",
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context()
    page = ctx.new_page()
    yield page
    ctx.close()
