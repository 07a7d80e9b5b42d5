"""Readiness and fault answers: what the platform needs is checked by /readyz, and a
database or data directory that cannot serve answers 503 with Retry-After, never 500.

Real faults: a NATS URL nobody answers, a PostgreSQL database switched to read-only,
a data directory on a read-only mount, a database server nobody answers, and
PostgreSQL backends terminated while requests run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from strato.app import create_app
from strato.bootstrap import ensure_admin
from strato.context import Context
from strato.settings import BusSettings, LogSettings, Settings
from tests.conftest import empty_database
from tests.helpers import assert_problem

ServeFn = Callable[[Any], str]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def settings_for(tmp_path: Path, **more: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", log=LogSettings(access=False), **more)


def prepared(settings: Settings) -> str:
    """Migrate and create the admin; return its token."""
    ctx = Context.open(settings)
    try:
        ctx.migrate()
        issued = ensure_admin(ctx.identities, settings)
        assert issued is not None
        return issued.secret
    finally:
        ctx.close()


def assert_unavailable(r: httpx.Response, text: str = "") -> None:
    assert_problem(r, 503, text)
    assert int(r.headers["retry-after"]) > 0


def failing_checks(r: httpx.Response) -> dict[str, Any]:
    assert_problem(r, 503)
    checks: dict[str, Any] = r.json()["checks"]
    return {name: c for name, c in checks.items() if c["status"] != "ok"}


# --- readiness ------------------------------------------------------------------------


def test_readiness_names_an_unreachable_bus(tmp_path: Path, serve: ServeFn) -> None:
    settings = settings_for(tmp_path, bus=BusSettings(url=f"nats://127.0.0.1:{closed_port()}"))
    prepared(settings)
    with httpx.Client(base_url=serve(create_app(settings)), timeout=30) as c:
        r = c.get("/readyz")
        failing = failing_checks(r)
        assert set(failing) == {"bus"}, r.json()
        assert "127.0.0.1" in failing["bus"]["detail"]
        assert "bus" in r.json()["detail"]
        # Searches do not need the bus.
        assert c.get("/stac/search").status_code == 200


def test_readiness_passes_with_every_check_named(tmp_path: Path, serve: ServeFn) -> None:
    settings = settings_for(tmp_path)
    prepared(settings)
    with httpx.Client(base_url=serve(create_app(settings)), timeout=30) as c:
        deadline = time.monotonic() + 30
        while (r := c.get("/readyz")).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)  # the embedded bus connects in the background
        assert r.status_code == 200, r.text
        checks = r.json()["checks"]
        assert {"database", "database-writable", "data-dir", "bus"} <= set(checks)
        assert all(c["status"] == "ok" for c in checks.values())


# --- PostgreSQL -----------------------------------------------------------------------


def _pg_admin(sql: str, *params: Any) -> None:
    import psycopg

    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
    ) as conn:
        conn.execute(sql, params or None)  # type: ignore[arg-type]


def on_empty_postgresql(tmp_path: Path, database_url: str) -> tuple[Settings, str, str]:
    """Settings on the emptied database at ``database_url``, migrated; an admin token and
    the database's name, for :func:`_pg_admin` to act on."""
    empty_database(database_url)
    settings = settings_for(tmp_path, database_url=database_url)
    return settings, prepared(settings), database_url.rsplit("/", 1)[1]


def test_read_only_postgresql_is_not_ready_and_writes_answer_503(
    tmp_path: Path, serve: ServeFn, postgres_server_url: str
) -> None:
    settings, token, name = on_empty_postgresql(tmp_path, postgres_server_url)
    _pg_admin(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    try:
        with httpx.Client(base_url=serve(create_app(settings)), timeout=30) as c:
            failing = failing_checks(c.get("/readyz"))
            assert "database-writable" in failing
            assert "read-only" in failing["database-writable"]["detail"]
            auth = {"Authorization": f"Bearer {token}"}
            assert c.get("/stac/search").status_code == 200
            assert c.get("/api/me", headers=auth).status_code in (200, 503)
            assert_unavailable(
                c.post("/api/tokens", json={"scopes": ["read"]}, headers=auth), "read-only"
            )
            # A job whose row cannot be written is not run, nor kept: the submitter hears.
            for prefer in ("respond-async", "respond-sync"):
                executed = c.post(
                    "/processes-api/processes/hello-world/execution",
                    json={"inputs": {"name": "ro"}},
                    headers={**auth, "Prefer": prefer},
                )
                assert_unavailable(executed, "read-only")
            listed = c.get("/processes-api/jobs", headers=auth)
            assert listed.status_code == 200
            assert listed.json()["jobs"] == []
    finally:
        _pg_admin(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')


def test_a_database_that_is_down_answers_503(tmp_path: Path, serve: ServeFn) -> None:
    settings = settings_for(
        tmp_path,
        database_url=f"postgresql://nobody@127.0.0.1:{closed_port()}/none?connect_timeout=2",
    )
    with httpx.Client(base_url=serve(create_app(settings)), timeout=30) as c:
        for path in ("/stac/search", "/stac/collections", "/datasets", "/api/datasets"):
            assert_unavailable(c.get(path), "database")
        assert_unavailable(c.get("/api/me", headers={"Authorization": "Bearer strato_x"}))
        assert c.get("/healthz").status_code == 200


def test_terminated_postgresql_connections_are_retried(
    tmp_path: Path, serve: ServeFn, postgres_server_url: str
) -> None:
    settings, token, name = on_empty_postgresql(tmp_path, postgres_server_url)
    stop = threading.Event()

    def terminate() -> None:
        while not stop.is_set():
            _pg_admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                name,
            )
            time.sleep(0.05)

    statuses: Counter[int] = Counter()
    with httpx.Client(base_url=serve(create_app(settings)), timeout=30) as c:
        auth = {"Authorization": f"Bearer {token}"}
        assert c.get("/stac/search").status_code == 200
        killer = threading.Thread(target=terminate, daemon=True)
        killer.start()
        try:
            for i in range(200):
                path = ("/stac/search", "/api/me", "/stac/collections", "/api/tokens")[i % 4]
                statuses[c.get(path, headers=auth).status_code] += 1
        finally:
            stop.set()
            killer.join()
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[200] >= 190, statuses


# --- a read-only data directory -------------------------------------------------------


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` made read-only as the server sees it: by permissions for a normal user,
    by a read-only bind mount for root (whom permissions do not stop)."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [path, *path.rglob("*")]}
        for p in modes:
            p.chmod(modes[p] & ~0o222)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    if shutil.which("mount") is None:
        pytest.skip("root without mount(8): cannot make a directory read-only")
    done = subprocess.run(
        ["mount", "--bind", "-o", "ro", str(path), str(path)], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"root cannot bind-mount read-only here: {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_read_only_data_directory_answers_503(tmp_path: Path, serve: ServeFn) -> None:
    settings = settings_for(tmp_path)
    token = prepared(settings)
    auth = {"Authorization": f"Bearer {token}"}
    # As after a restart: the server opens its files on the read-only directory.
    with (
        read_only(settings.data_dir),
        httpx.Client(base_url=serve(create_app(settings)), timeout=30) as c,
    ):
        failing = failing_checks(c.get("/readyz"))
        assert "data-dir" in failing, failing
        assert "not writable" in failing["data-dir"]["detail"]
        for path in ("/stac/search", "/datasets", "/api/me"):
            r = c.get(path, headers=auth)
            assert r.status_code in (200, 503), (path, r.text)
            if r.status_code == 503:
                assert_unavailable(r)
        assert_unavailable(c.post("/api/tokens", json={"scopes": ["read"]}, headers=auth))
        assert c.get("/healthz").status_code == 200


class TcpProxy:
    """A loopback TCP proxy to ``target`` in a thread; ``cut()`` drops every connection
    and stops listening, ``resume()`` listens again on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        import asyncio

        self.target = target
        self.port = closed_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: Any = None
        self.writers: set[Any] = set()
        self.resume()

    def _run(self, coro: Any) -> Any:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _pipe(self, reader: Any, writer: Any) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _serve(self, reader: Any, writer: Any) -> None:
        import asyncio

        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def resume(self) -> None:
        import asyncio

        async def start() -> Any:
            return await asyncio.start_server(self._serve, "127.0.0.1", self.port)

        self.server = self._run(start())

    def cut(self) -> None:
        async def stop() -> None:
            self.server.close()
            for writer in list(self.writers):
                writer.close()
            self.writers.clear()

        self._run(stop())

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_readiness_follows_a_lost_and_regained_nats_connection(
    tmp_path: Path, serve: ServeFn
) -> None:
    import asyncio
    import secrets

    from tests.bus.conftest import NATS, _delete_stream
    from tests.conftest import need_service

    need_service("NATS", *NATS)
    token = secrets.token_hex(4)
    stream = f"STRATO_TEST_{token}"
    proxy = TcpProxy(NATS)
    url = f"nats://127.0.0.1:{proxy.port}?stream={stream}&prefix=strato_test_{token}"
    settings = settings_for(tmp_path, bus=BusSettings(url=url))
    prepared(settings)

    def bus_check(c: httpx.Client, want: str) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while True:
            r = c.get("/readyz")
            check: dict[str, Any] = r.json()["checks"]["bus"]
            if check["status"] == want or time.monotonic() > deadline:
                return check
            time.sleep(0.2)

    try:
        with httpx.Client(base_url=serve(create_app(settings)), timeout=30) as c:
            assert bus_check(c, "ok")["status"] == "ok"
            proxy.cut()
            lost = bus_check(c, "failing")
            assert lost["status"] == "failing"
            assert "connection lost" in lost["detail"]
            proxy.resume()
            # The client reconnects by itself, however long it took.
            assert bus_check(c, "ok")["status"] == "ok"
    finally:
        proxy.close()
        asyncio.run(_delete_stream(f"nats://{NATS[0]}:{NATS[1]}", stream))
