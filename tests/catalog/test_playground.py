"""The playground scenario: a bus and three node processes; East and West hold every
published item, Secondary only the historical experiment's; `down` stops them all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from strato.catalog.demo import playground
from tests.served import run_strato

COUNT = 150
SEED = 11


def _strato(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    done = run_strato(*args, env=env, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _held(url: str, **params: str) -> int:
    r = httpx.get(f"{url}/stac/search", params={"limit": "1", **params}, timeout=10)
    r.raise_for_status()
    return int(r.json()["numberMatched"])


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}
    return {**clean, "STRATO_DATA_DIR": str(tmp_path / "home")}


def test_playground_federation(tmp_path: Path, env: dict[str, str]) -> None:
    # The default place, in the data directory, where `strato generate` looks for it.
    where = tmp_path / "home" / "playground"
    out = _strato("playground", "up", "--ports", "0,0,0", env=env)
    try:
        state = playground.load(where)
        assert state is not None
        urls = {n.name: n.url for n in state.nodes}
        assert set(urls) == {"east", "west", "secondary"}
        for url in urls.values():
            assert url in out

        items = [
            json.loads(line)
            for line in _strato(
                "generate", str(COUNT), "--no-publish", "--seed", str(SEED), env=env
            ).splitlines()
            if line.strip()
        ]
        historical = sum(
            1 for it in items if it["properties"]["cmip6:experiment_id"] == "historical"
        )
        assert 0 < historical < COUNT

        # Published the way a user would: the generator finds the running playground's bus.
        _strato("generate", str(COUNT), "--publish", "--node", "east", "--seed", str(SEED), env=env)

        want = {"east": COUNT, "west": COUNT, "secondary": historical}
        deadline = time.monotonic() + 90
        held: dict[str, int] = {}
        while time.monotonic() < deadline:
            held = {name: _held(url) for name, url in urls.items()}
            if held == want:
                break
            time.sleep(0.5)
        assert held == want
        # Secondary holds nothing but the historical experiment.
        assert _held(urls["secondary"], filter="\"cmip6:experiment_id\" <> 'historical'") == 0

        status = _strato("playground", "status", env=env)
        assert f"items: {COUNT}" in status
    finally:
        _strato("playground", "down", env=env)
    for node in state.nodes:
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{node.url}/healthz", timeout=2)
    assert playground.running(where) is None


def test_playground_refuses_a_second_start_and_a_stop_of_nothing(
    tmp_path: Path, env: dict[str, str]
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "strato", "playground", "down", "--dir", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 3
    assert "no playground runs" in done.stderr
    assert "Traceback" not in done.stderr


def test_playground_creates_postgresql_databases_and_restarts_one_node(
    tmp_path: Path, env: dict[str, str]
) -> None:
    import secrets

    from strato import db
    from tests.conftest import PG, need_service

    need_service(*PG)
    prefix = f"strato_pg_{secrets.token_hex(3)}"
    database_url = f"postgresql://postgres@127.0.0.1:5432/{prefix}_{{node}}"
    where = tmp_path / "home" / "playground"
    # The nodes' databases do not exist: `up` creates them.
    out = _strato("playground", "up", "--ports", "0,0,0", "--database-url", database_url, env=env)
    try:
        state = playground.load(where)
        assert state is not None
        urls = {n.name: n.url for n in state.nodes}
        assert all(url in out for url in urls.values())
        _strato("generate", "20", "--publish", "--seed", str(SEED), env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _held(urls["east"]) < 20:
            time.sleep(0.5)
        assert _held(urls["east"]) == 20

        # Others keep running while `up` refuses; `restart` restarts east alone.
        again = subprocess.run(
            [sys.executable, "-m", "strato", "playground", "up", "--ports", "0,0,0"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert again.returncode == 4, again.stderr
        assert "playground restart" in again.stderr
        west_pid = state.node("west").pid
        said = _strato("playground", "restart", "east", env=env)
        assert urls["east"] in said
        after = playground.load(where)
        assert after is not None
        assert after.node("east").pid != state.node("east").pid
        assert after.node("west").pid == west_pid
        assert httpx.get(f"{urls['east']}/readyz", timeout=10).status_code == 200
        # Its items were kept in its PostgreSQL database.
        assert _held(urls["east"]) == 20
        assert _held(urls["west"]) == 20
    finally:
        _strato("playground", "down", env=env)
        for node in ("east", "west", "secondary"):
            db.drop_database(database_url.replace("{node}", node))
