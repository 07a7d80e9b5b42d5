"""The consumer under faults: an event the database refuses every time, a database that
is down, and a consumer process killed with SIGKILL in the middle of a stream."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text

from strato.bus import Bus, open_bus
from strato.catalog.demo.generator import generate_items
from strato.catalog.model.events import create_event, retraction_event
from strato.catalog.store import AppliedEventRow, ItemRow, ItemStore
from strato.db import create_engine, session_factory, upgrade
from tests.bus.conftest import _delete_stream
from tests.catalog.test_consumer import (
    ERRORS,
    WHO,
    bus,  # noqa: F401 (a fixture)
    drain,
    make_consumer,
    nats_bus_url,
    publish,
    read_topic,
    store,  # noqa: F401 (a fixture)
)
from tests.conftest import empty_database

# --- an event the database refuses, every time ------------------------------------------------

POISON_MESSAGE = "poison: this item is refused"


def refuse_item(engine: Engine, item_id: str) -> str:
    """A trigger that makes inserting ``item_id`` fail; the message the driver will give."""
    dialect = engine.dialect.name
    with engine.begin() as conn:
        if dialect == "sqlite":
            # RAISE() would be a constraint error, which the applier takes for a conflict;
            # a runtime error in the trigger body is a plain failure, as a real fault is.
            conn.execute(
                text(
                    "CREATE TRIGGER strato_poison BEFORE INSERT ON catalog_items "
                    f"WHEN NEW.id = '{item_id}' BEGIN SELECT json('{POISON_MESSAGE}'); END"
                )
            )
            return "malformed JSON"
        if dialect == "postgresql":
            conn.execute(
                text(
                    "CREATE OR REPLACE FUNCTION strato_poison() RETURNS trigger AS $$ BEGIN "
                    f"IF NEW.id = '{item_id}' THEN RAISE EXCEPTION '{POISON_MESSAGE}'; END IF; "
                    "RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER strato_poison BEFORE INSERT ON catalog_items "
                    "FOR EACH ROW EXECUTE FUNCTION strato_poison()"
                )
            )
            return POISON_MESSAGE
        conn.execute(
            text(
                "CREATE TRIGGER strato_poison BEFORE INSERT ON catalog_items FOR EACH ROW "
                f"BEGIN IF NEW.id = '{item_id}' THEN SIGNAL SQLSTATE '45000' "
                f"SET MESSAGE_TEXT = '{POISON_MESSAGE}'; END IF; END"
            )
        )
        return POISON_MESSAGE


@pytest.mark.asyncio
async def test_poison_event_goes_to_errors_after_its_retries(
    store: ItemStore,  # noqa: F811
    bus: Bus,  # noqa: F811
) -> None:
    items = list(generate_items(10, seed=13))
    poison = items[4]
    engine = store.sessions.kw["bind"]
    message = refuse_item(engine, poison["id"])
    request = "poison-run"
    events = [create_event("CMIP6", it, requester=WHO, request_id=request) for it in items]
    # The stream goes on after it: a later event of another item, in the same batch.
    events.append(retraction_event("CMIP6", items[9]["id"], requester=WHO, request_id=request))
    await publish(bus, events)

    consumer = make_consumer(store, bus, batch_size=20, retries=2, retry_backoff=0.01)
    assert await drain(consumer) == len(events)

    assert store.count() == 9
    assert store.item_flags("CMIP6", items[9]["id"]) == (False, True)
    errors = await read_topic(bus, ERRORS)
    assert len(errors) == 1, errors
    problem = errors[0]["error"]
    assert problem["status"] == 500
    assert problem["title"] == "processing-failed"
    assert problem["detail"] == message
    # Tried alone once and retried twice, as configured, before it was given up.
    assert problem["attempts"] == 3
    bad = events[4]
    assert problem["instance"] == f"{request}:{bad.metadata.event_id}"
    assert errors[0]["data"]["payload"]["item"] == poison
    assert consumer.stats.failed == 1
    assert consumer.stats.applied == 10

    outcomes = {o.event_id: o for o in store.outcomes_for_request(request)}
    assert len(outcomes) == len(events)
    failed = outcomes[bad.metadata.event_id]
    assert (failed.outcome, failed.status, failed.title) == ("rejected", 500, "processing-failed")
    assert sum(o.outcome == "applied" for o in outcomes.values()) == 10

    # Delivered again: remembered as failed, neither retried nor reported a second time.
    await publish(bus, [bad])
    assert await drain(consumer) == 1
    assert consumer.stats.duplicates == 1
    assert len(await read_topic(bus, ERRORS)) == 1
    await consumer.close()


# --- a database that is down -------------------------------------------------------------


@pytest.mark.asyncio
async def test_database_outage_holds_the_batch_and_reports_nothing(
    tmp_path: Path,
    bus: Bus,  # noqa: F811
) -> None:
    # Where the database file should be there is a directory: every connect fails.
    db_path = tmp_path / "node.db"
    db_path.mkdir()
    engine = create_engine(f"sqlite:///{db_path}")
    node_store = ItemStore(session_factory(engine))
    items = list(generate_items(5, seed=21))
    await publish(bus, [create_event("CMIP6", it, requester=WHO) for it in items])

    # No retries at all: were the outage taken for poison, all 5 would be errors at once.
    consumer = make_consumer(node_store, bus, retries=0, retry_backoff=0.0)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await until(lambda: consumer.stats.outage is not None, "the outage to be noticed")
    first = consumer.stats.last_error_at
    await until(lambda: consumer.stats.last_error_at != first, "a second try")
    assert "database is unreachable" in (consumer.stats.outage or "")
    assert "unable to open database file" in (consumer.stats.outage or "")
    assert consumer.stats.applied == consumer.stats.failed == 0
    assert await read_topic(bus, ERRORS) == []

    # The database comes back (migrated aside, then moved in place at once).
    ready = tmp_path / "ready.db"
    aside = create_engine(f"sqlite:///{ready}")
    upgrade(aside)
    aside.dispose()
    db_path.rmdir()
    ready.rename(db_path)
    await until(lambda: consumer.stats.applied == len(items), "the held batch to be applied")
    stop.set()
    await asyncio.wait_for(task, 30)

    assert node_store.count() == len(items)
    assert consumer.stats.outage is None
    assert consumer.stats.failed == consumer.stats.rejected == 0
    assert await read_topic(bus, ERRORS) == []
    engine.dispose()


async def until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


# --- SIGKILL in the middle of a stream ------------------------------------------------------

EVENTS = 10_000


def _strato(*args: str) -> list[str]:
    return [sys.executable, "-m", "strato", *args]


def _count(engine: Engine, query: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _wait_for(
    engine: Engine, proc: subprocess.Popen[bytes], log: Path, done: Callable[[int], bool]
) -> int:
    deadline = time.monotonic() + 240
    while True:
        count = _count(engine, select(func.count()).select_from(ItemRow))
        if done(count):
            return count
        assert proc.poll() is None, f"the consumer exited: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"stuck at {count} items: {log.read_text()[-3000:]}"
        time.sleep(0.02)


@pytest.mark.parametrize(("database", "backend"), [("sqlite", "embedded"), ("postgresql", "nats")])
def test_sigkill_mid_stream_loses_and_duplicates_nothing(
    database: str, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if database == "sqlite":
        database_url = f"sqlite:///{tmp_path / 'node.db'}"
    else:
        database_url = request.getfixturevalue("postgres_server_url")
        empty_database(database_url)
    stream = None
    if backend == "embedded":
        # A short lease: the restarted consumer takes over from the killed one quickly.
        bus_url = f"sqlite:///{tmp_path / 'bus.db'}?lease_seconds=2"
    else:
        bus_url, stream = asyncio.run(nats_bus_url())
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}
    env.update(
        STRATO_DATA_DIR=str(tmp_path / "data"),
        STRATO_DATABASE_URL=database_url,
        STRATO_BUS_URL=bus_url,
        STRATO_NODE_NAME=f"kill-{secrets.token_hex(3)}",
    )
    engine = create_engine(database_url)
    try:
        published = subprocess.run(
            _strato("generate", str(EVENTS), "--publish", "--seed", "99"),
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert published.returncode == 0, published.stderr
        assert f"published {EVENTS} create events" in published.stdout

        log = tmp_path / "consumer.log"
        command = _strato("consumer", "--batch-size", "200")
        with log.open("wb") as out:
            first = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=out, stderr=out)
        try:
            _wait_for_schema(engine, first, log)
            held = _wait_for(engine, first, log, lambda n: n >= 500)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(30)
        assert first.returncode == -signal.SIGKILL
        at_kill = _count(engine, select(func.count()).select_from(ItemRow))
        # Killed in the middle: some of the stream in the database, not all of it.
        assert held <= at_kill < EVENTS

        log2 = tmp_path / "consumer2.log"
        with log2.open("wb") as out:
            second = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=out, stderr=out)
        try:
            _wait_for(engine, second, log2, lambda n: n >= EVENTS)
        finally:
            # As a user would: it finishes and acknowledges the batch in hand, then stops.
            second.send_signal(signal.SIGTERM)
            second.wait(60)
        output = log2.read_text()
        assert second.returncode == 0, output[-3000:]
        assert "stopped after" in output
        assert "0 rejected (0 invalid), 0 failed" in output

        assert _count(engine, select(func.count()).select_from(ItemRow)) == EVENTS
        distinct = select(func.count(func.distinct(ItemRow.id)))
        assert _count(engine, distinct) == EVENTS
        applied = select(func.count()).where(AppliedEventRow.outcome == "applied")
        assert _count(engine, applied) == EVENTS
        assert _count(engine, select(func.count()).select_from(AppliedEventRow)) == EVENTS

        async def errors() -> list[dict[str, Any]]:
            async with open_bus(bus_url, tmp_path / "data") as bus:
                return await read_topic(bus, ERRORS, idle=1.0)

        assert asyncio.run(errors()) == []
    finally:
        engine.dispose()
        if stream is not None:
            asyncio.run(_delete_stream(bus_url.split("?")[0], stream))


def _wait_for_schema(engine: Engine, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until the consumer has migrated the database (it does so before consuming)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            _count(engine, select(func.count()).select_from(ItemRow))
            return
        except Exception:  # the table is not there yet
            assert proc.poll() is None, f"the consumer exited: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "the consumer did not migrate the database"
            time.sleep(0.05)
