"""`strato generate` and `strato consumer` as a user runs them: real processes, real buses."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from strato.bus import open_bus
from strato.catalog.demo.generator import generate_items
from strato.catalog.model.events import SINGLE_TOPIC, parse_event
from strato.catalog.store import ItemStore
from strato.db import create_engine, session_factory
from tests.bus.conftest import _delete_stream
from tests.catalog.test_consumer import nats_bus_url
from tests.served import run_strato

CMIP6_ID = re.compile(r"^CMIP6(\.[A-Za-z0-9-]+){8}\.v[0-9]{8}$")
REQUEST_ID = re.compile(r"request id ([0-9a-f-]{36})")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}
    return {**clean, "STRATO_DATA_DIR": str(tmp_path / "data")}


def read_all(bus_url: str, data_dir: Path, pattern: str = ".*") -> list[tuple[str, str, bytes]]:
    """(topic, key, value) of everything on the bus."""

    async def read() -> list[tuple[str, str, bytes]]:
        found: list[tuple[str, str, bytes]] = []
        async with open_bus(bus_url, data_dir) as bus:
            subscription = await bus.subscribe("reader", pattern=pattern)
            while messages := await subscription.fetch(500, timeout=1.0):
                found.extend((m.topic, m.key, m.value) for m in messages)
                await subscription.ack(messages)
            await subscription.close()
        return found

    return asyncio.run(read())


# --- printing -----------------------------------------------------------------------------


def test_generate_prints_items_as_json_lines(env: dict[str, str], tmp_path: Path) -> None:
    done = run_strato("generate", "5", "--no-publish", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 5
    items = [json.loads(line) for line in lines]
    for item in items:
        assert CMIP6_ID.match(item["id"]), item["id"]
        assert item["type"] == "Feature"
        assert item["collection"] == "CMIP6"
        assert item["properties"]["data_node"] == "east"
    # The default: printed, not published, and the same items for the same seed.
    assert [it["id"] for it in items] == [it["id"] for it in generate_items(5)]
    assert not (tmp_path / "data" / "bus.db").exists()

    west = run_strato(
        "generate", "3", "--node", "west", "--project", "CORDEX", "--seed", "4",
        "--collection", "my-cordex", env=env, cwd=tmp_path,
    )  # fmt: skip
    assert west.returncode == 0, west.stderr
    cordex = [json.loads(line) for line in west.stdout.splitlines()]
    assert len(cordex) == 3
    for item in cordex:
        assert item["id"].startswith("CORDEX.")
        assert item["collection"] == "my-cordex"
        assert item["properties"]["data_node"] == "west"
        hrefs = {link["rel"]: link["href"] for link in item["links"]}
        assert hrefs["collection"].endswith("/collections/my-cordex")
        assert f"/collections/my-cordex/items/{item['id']}" in hrefs["self"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--", "-1"], "greater than or equal to 0"),
        (["3", "--project", "CMIP7"], "unknown project 'CMIP7': one of CMIP6, CORDEX"),
        (["3", "--node", "no such node"], "node name 'no such node' is not valid"),
        (["3", "--collection", "a/b"], "collection id 'a/b' is not valid"),
        (["many"], "Invalid value for 'count'"),
    ],
)
def test_generate_refuses_bad_input(
    args: list[str], message: str, env: dict[str, str], tmp_path: Path
) -> None:
    done = run_strato("generate", *args, env=env, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


# --- publishing -----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["embedded", "nats"])
def test_generate_publishes_create_events(
    backend: str, env: dict[str, str], tmp_path: Path
) -> None:
    stream = None
    if backend == "embedded":
        bus_url = f"sqlite:///{tmp_path / 'bus.db'}"
    else:
        bus_url, stream = asyncio.run(nats_bus_url())
    env = {**env, "STRATO_BUS_URL": bus_url, "STRATO_NODE_NAME": "pub"}
    try:
        done = run_strato("generate", "30", "--publish", "--seed", "8", env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert f"published 30 create events to topic {SINGLE_TOPIC}" in done.stdout
        found = REQUEST_ID.search(done.stdout)
        assert found, done.stdout
        assert "events/s" in done.stdout

        messages = read_all(bus_url, tmp_path / "data")
        assert len(messages) == 30
        expected = [it["id"] for it in generate_items(30, seed=8)]
        events = [parse_event(value) for _, _, value in messages]
        assert [e.item_id for e in events] == expected
        assert {topic for topic, _, _ in messages} == {SINGLE_TOPIC}
        assert [key for _, key, _ in messages] == expected
        for event in events:
            assert event.kind == "create"
            assert event.collection_id == "CMIP6"
            assert event.metadata.request_id == found.group(1)
            assert event.metadata.auth.requester_data.client_id == "strato-generate"
        assert len({e.metadata.event_id for e in events}) == 30
    finally:
        if stream is not None:
            asyncio.run(_delete_stream(bus_url.split("?")[0], stream))


def test_generate_routes_by_drs_and_trickles(env: dict[str, str], tmp_path: Path) -> None:
    bus_url = f"sqlite:///{tmp_path / 'bus.db'}"
    env = {**env, "STRATO_BUS_URL": bus_url, "STRATO_CATALOG_TOPIC_STRATEGY": "drs"}
    done = run_strato(
        "generate", "12", "--publish", "--delay", "--project", "CORDEX", env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    messages = read_all(bus_url, tmp_path / "data")
    assert len(messages) == 12
    topics = {topic for topic, _, _ in messages}
    for topic in topics:
        assert re.fullmatch(r"CORDEX\.[A-Za-z0-9-]+\.[A-Za-z0-9-]+", topic), topic
    shown = f"to topic {next(iter(topics))}" if len(topics) == 1 else f"to {len(topics)} topics"
    assert shown in done.stdout
    assert all(parse_event(value).collection_id == "CORDEX" for _, _, value in messages)


# --- strato consumer ----------------------------------------------------------------------


def test_consumer_runs_until_interrupted(env: dict[str, str], tmp_path: Path) -> None:
    bus_url = f"sqlite:///{tmp_path / 'bus.db'}"
    database_url = f"sqlite:///{tmp_path / 'node.db'}"
    env = {**env, "STRATO_BUS_URL": bus_url, "STRATO_DATABASE_URL": database_url}
    published = run_strato("generate", "40", "--publish", env=env, cwd=tmp_path)
    assert published.returncode == 0, published.stderr

    log = tmp_path / "consumer.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "strato", "consumer", "--node", "north", "--batch-size", "7"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    engine = create_engine(database_url)
    store = ItemStore(session_factory(engine))
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            if _count(store) == 40:
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        engine.dispose()
    output = log.read_text()
    assert proc.returncode == 0, output
    first = output.splitlines()[0]
    assert "consumer of node 'north': group north, topics esgf\\.events" in first
    assert f"bus {bus_url}" in first
    assert "40 applied, 0 duplicates, 0 rejected (0 invalid), 0 failed" in output
    assert "Traceback" not in output


def _count(store: ItemStore) -> int | None:
    try:
        return store.count()
    except Exception:  # not migrated yet
        return None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--topics", "("], "topic pattern '(' is not a regular expression"),
        (["--group", "no spaces"], "consumer group name 'no spaces' is not valid"),
        (["--node", "n", "--group", ""], "consumer group name must be a non-empty string"),
        (["--batch-size", "0"], "Invalid value for '--batch-size'"),
    ],
)
def test_consumer_refuses_bad_input(
    args: list[str], message: str, env: dict[str, str], tmp_path: Path
) -> None:
    env = {**env, "STRATO_DATABASE_URL": f"sqlite:///{tmp_path / 'node.db'}"}
    done = run_strato("consumer", *args, env=env, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    # Refused before anything was touched.
    assert not (tmp_path / "node.db").exists()
