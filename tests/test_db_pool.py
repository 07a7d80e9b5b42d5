"""How many database connections a process keeps: as many as the web server runs
requests at once, so 32 concurrent clients never queue for one (bench/soak.py saw 503s
from the pool's 30 s wait with SQLAlchemy's 5 + 10 on a busy machine)."""

from __future__ import annotations

import threading
from pathlib import Path

import anyio.to_thread
import pytest

from strato.context import Context
from strato.settings import Settings

# Requests the soak sends at once.
CLIENTS = 32


def _hold_at_once(ctx: Context, count: int) -> list[BaseException]:
    """``count`` threads each holding a connection of ``ctx`` until all hold one."""
    together = threading.Barrier(count, timeout=60)  # a guard against hanging, not a timing
    failed: list[BaseException] = []

    def request() -> None:
        try:
            with ctx.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
                together.wait()
        except BaseException as exc:  # reported by the test
            failed.append(exc)
            together.abort()

    threads = [threading.Thread(target=request) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failed


def test_every_request_thread_of_the_web_server_gets_a_connection_at_once(
    database_url: str, tmp_path: Path
) -> None:
    async def request_threads() -> int:
        return int(anyio.to_thread.current_default_thread_limiter().total_tokens)

    threads = anyio.run(request_threads)
    assert threads >= CLIENTS
    ctx = Context.open(Settings(data_dir=tmp_path / "data", database_url=database_url))
    try:
        assert _hold_at_once(ctx, threads) == []
    finally:
        ctx.close()


@pytest.mark.parametrize("size", [3, 60])
def test_the_pool_is_sized_from_settings(
    size: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRATO_DATABASE_POOL_SIZE", str(size))
    ctx = Context.open(Settings(data_dir=tmp_path / "data"))
    try:
        pool = ctx.engine.pool
        kept, overflow = pool.size(), pool._max_overflow  # type: ignore[attr-defined]
        assert kept + overflow == size
        # Few kept: what a burst opened is closed when the server idles.
        assert kept <= 5
        # All of them together stay within the SQLite page cache budget.
        with ctx.engine.connect() as conn:
            cache_kib = -int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())
        assert cache_kib * 1024 * size <= 256 * 2**20
    finally:
        ctx.close()
