"""Schedules: cron parsing and next runs, the scheduler submitting due runs through the
real engine, once however many schedulers run, the catch-up after downtime, the CLI.

The scheduler's clock is injected: it runs at real speed from a time the test sets, so a
"* * * * *" schedule falls due a fraction of a second after the test moves the clock to
just before a minute, not after a minute of waiting.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from strato.context import Context
from strato.errors import Conflict, InvalidInput
from strato.job_engine import JobStatus
from strato.jobs.engine import JobService
from strato.jobs.model.cron import Cron
from strato.jobs.scheduler import Scheduler
from strato.jobs.schedules import ScheduleService, ScheduleStore
from strato.jobs.service import open_jobs
from strato.settings import LogSettings, Settings
from tests.jobs.conftest import PATIENCE

T = TypeVar("T")
NOON = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
ECHO = "tests.jobs.tasks:echo"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# --- cron ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "named"),
    [
        ("61 * * * *", "minute field '61'"),
        ("* 24 * * *", "hour field '24'"),
        ("* * 0 * *", "day-of-month field '0'"),
        ("* * * 13 *", "month field '13'"),
        ("* * * * FUNDAY", "day-of-week field 'FUNDAY'"),
        ("* * * *", "4 fields; five are needed"),
        ("0 * * * * *", "6 fields; five are needed"),
    ],
)
def test_a_bad_cron_expression_is_refused_naming_the_field(expression: str, named: str) -> None:
    with pytest.raises(InvalidInput, match=r"^cron: ") as caught:
        Cron.parse(expression)
    assert named in caught.value.detail


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"^timezone: 'Mars/Olympus'"):
        Cron.parse("0 3 * * *", "Mars/Olympus")


def test_next_runs_are_read_in_the_time_zone() -> None:
    nine = Cron.parse("0 9 * * MON-FRI", "Europe/Berlin")
    # Winter: UTC+1; Friday evening to Monday morning.
    assert nine.next_after(at("2025-01-17T12:00:00Z")) == at("2025-01-20T08:00:00Z")
    # Summer: UTC+2.
    assert nine.next_after(at("2025-07-01T12:00:00Z")) == at("2025-07-02T07:00:00Z")
    assert Cron.parse("*/15 * * * *").next_after(at("2025-01-01T10:07:59Z")) == at(
        "2025-01-01T10:15:00Z"
    )


def test_across_daylight_saving_a_fixed_time_runs_once_a_day() -> None:
    night = Cron.parse("30 2 * * *", "Europe/Berlin")
    # Spring: 02:30 does not exist on 30 March; it runs at 03:00 local, the jump's end.
    assert night.next_after(at("2025-03-29T12:00:00Z")) == at("2025-03-30T01:00:00Z")
    # Autumn: 02:30 happens twice on 26 October; it runs at the first only.
    first = night.next_after(at("2025-10-25T12:00:00Z"))
    assert first == at("2025-10-26T00:30:00Z")
    assert night.next_after(first) == at("2025-10-27T01:30:00Z")
    # From inside the repeated hour (02:10 of the second pass) the next is tomorrow's.
    assert night.next_after(at("2025-10-26T01:10:00Z")) == at("2025-10-27T01:30:00Z")
    # An interval runs in both passes of the repeated hour.
    half = Cron.parse("*/30 * * * *", "Europe/Berlin")
    assert half.next_after(at("2025-10-26T00:30:00Z")) == at("2025-10-26T01:00:00Z")
    assert half.next_after(at("2025-10-26T01:00:00Z")) == at("2025-10-26T01:30:00Z")


# --- the scheduler on a real engine ---------------------------------------------------


class Clock:
    """Real-speed time from a moment the test sets."""

    def __init__(self, moment: datetime) -> None:
        self.set(moment)

    def set(self, moment: datetime) -> None:
        self._base, self._t0 = moment, time.monotonic()

    def now(self) -> datetime:
        return self._base + timedelta(seconds=time.monotonic() - self._t0)


@dataclass
class Node:
    """What `strato up` runs for schedules: engine, schedules, scheduler (not started)."""

    jobs: JobService
    schedules: ScheduleService
    scheduler: Scheduler
    ctx: Context


MakeNode = Callable[..., Node]


@pytest.fixture
def make_node(tmp_path: Path) -> Iterator[MakeNode]:
    made: list[Node] = []

    def make(clock: Clock, database_url: str | None = None) -> Node:
        settings = Settings(
            data_dir=tmp_path / "data",
            database_url=database_url,
            log=LogSettings(access=False),
            jobs={"workers": 1},
        )
        ctx = Context.open(settings)
        ctx.migrate()
        jobs = open_jobs(ctx.sessions, settings)
        jobs.start(recover=False)
        schedules = ScheduleService(ScheduleStore(ctx.sessions), clock)
        # A rescan longer than any test: only a wake or a due time moves the scheduler.
        node = Node(jobs, schedules, Scheduler(schedules, jobs, rescan=600), ctx)
        made.append(node)
        return node

    yield make
    for node in made:
        node.scheduler.close()
        node.jobs.close()
        node.ctx.close()


def eventually(get: Callable[[], T], check: Callable[[T], bool]) -> T:
    deadline = time.monotonic() + PATIENCE
    while True:
        value = get()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never got there: {value}")
        time.sleep(0.01)


def scheduled_jobs(node: Node, name: str) -> list[Any]:
    return node.jobs.list(process_id=f"scheduled:{name}", limit=1000)


def add_every_minute(node: Node, name: str = "tick", **inputs: Any) -> None:
    node.schedules.add(
        name=name,
        cron="* * * * *",
        task=ECHO,
        inputs=inputs,
        owner="alice",
        process_id=f"scheduled:{name}",
    )


def test_a_due_schedule_submits_a_job_that_runs(make_node: MakeNode) -> None:
    clock = Clock(NOON)
    node = make_node(clock)
    node.scheduler.start()
    # The scheduler sleeps (nothing to do, rescan 600 s): adding wakes it, and it then
    # sleeps until the run is due, a second on.
    clock.set(NOON + timedelta(seconds=59))
    add_every_minute(node, n=1)
    schedule = eventually(lambda: node.schedules.get("tick"), lambda s: s.last_job_id is not None)
    assert schedule.last_run == NOON + timedelta(minutes=1)
    assert schedule.next_run == NOON + timedelta(minutes=2)
    assert schedule.last_job_id is not None
    job = asyncio.run(node.jobs.wait(schedule.last_job_id, PATIENCE))
    assert job.status == JobStatus.successful, job
    assert job.results == {"echo": {"n": 1}, "job": job.id}
    assert (job.owner, job.process_id, job.task) == ("alice", "scheduled:tick", ECHO)
    assert [j.id for j in scheduled_jobs(node, "tick")] == [job.id]


def test_schedules_are_added_updated_and_removed(make_node: MakeNode) -> None:
    node = make_node(Clock(NOON + timedelta(seconds=30)))
    add_every_minute(node)
    with pytest.raises(Conflict):
        add_every_minute(node)
    with pytest.raises(InvalidInput, match="hour field '25'"):
        node.schedules.update("tick", cron="0 25 * * *")
    off = node.schedules.update("tick", enabled=False)
    assert (off.enabled, off.next_run) == (False, None)
    on = node.schedules.update("tick", enabled=True, cron="0 3 * * *", timezone="Asia/Tokyo")
    assert on.next_run == at("2025-01-01T18:00:00Z")
    assert node.schedules.get("tick") == on
    assert [s.name for s in node.schedules.list(owner="alice")] == ["tick"]
    node.schedules.remove("tick")
    assert node.schedules.list() == []


def test_a_restart_after_downtime_catches_up_once(make_node: MakeNode) -> None:
    clock = Clock(NOON)
    first = make_node(clock)
    clock.set(NOON + timedelta(seconds=30))
    add_every_minute(first)
    # Down for three hours: 186 runs missed. A new node starts at 15:06:30.
    clock.set(NOON + timedelta(hours=3, minutes=6, seconds=30))
    node = make_node(clock)
    node.scheduler.start()
    schedule = eventually(lambda: node.schedules.get("tick"), lambda s: s.last_job_id is not None)
    # One run, for the earliest missed time; the next is the next minute from now.
    assert schedule.last_run == NOON + timedelta(minutes=1)
    assert schedule.next_run == NOON + timedelta(hours=3, minutes=7)
    # Asleep until then (tens of seconds), so nothing else was submitted.
    assert node.scheduler.run_due() == schedule.next_run
    assert [j.id for j in scheduled_jobs(node, "tick")] == [schedule.last_job_id]


def test_of_two_stale_readers_of_a_due_run_one_claims_it(
    make_node: MakeNode, database_url: str
) -> None:
    clock = Clock(NOON + timedelta(seconds=30))
    one, two = make_node(clock, database_url), make_node(clock, database_url)
    add_every_minute(one)
    now = NOON + timedelta(minutes=1, seconds=5)
    [seen_by_one] = one.schedules.store.due(now)
    [seen_by_two] = two.schedules.store.due(now)
    assert seen_by_one.next_run == seen_by_two.next_run == NOON + timedelta(minutes=1)
    due, then = NOON + timedelta(minutes=1), NOON + timedelta(minutes=2)
    assert one.schedules.store.claim(seen_by_one.id, due, then, now)
    assert not two.schedules.store.claim(seen_by_two.id, due, then, now)
    assert two.schedules.get("tick").next_run == then


def test_two_schedulers_on_one_database_submit_each_run_once(
    make_node: MakeNode, database_url: str
) -> None:
    clock = Clock(NOON)
    one, two = make_node(clock, database_url), make_node(clock, database_url)
    add_every_minute(one)
    one.scheduler.start()
    two.scheduler.start()
    runs = 5
    for minute in range(1, runs + 1):
        due = NOON + timedelta(minutes=minute)
        # Both woken together just before the due time, as two nodes' clocks would.
        clock.set(due - timedelta(seconds=0.2))
        wake = threading.Barrier(2)
        for node in (one, two):
            threading.Thread(target=_wake_with, args=(wake, node.scheduler)).start()
        eventually(lambda: one.schedules.get("tick"), lambda s, d=due: s.last_run == d)
    last = eventually(
        lambda: one.schedules.get("tick"),
        lambda s: s.last_job_id is not None and s.last_run == NOON + timedelta(minutes=runs),
    )
    assert last.next_run == NOON + timedelta(minutes=runs + 1)
    submitted = scheduled_jobs(one, "tick")
    assert len(submitted) == runs, [(j.id, j.created) for j in submitted]


def _wake_with(barrier: threading.Barrier, scheduler: Scheduler) -> None:
    barrier.wait()
    scheduler.wake()


# --- the command line ---------------------------------------------------------------


def strato(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "strato", "--data-dir", str(data_dir), "jobs", "schedule", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_schedules_round_trip_through_the_command_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    added = strato(
        data_dir,
        "add",
        "nightly",
        "0 3 * * *",
        ECHO,
        "--inputs",
        '{"a": 1}',
        "--tz",
        "Europe/Berlin",
        "--owner",
        "alice",
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("nightly  enabled")
    bad = strato(data_dir, "add", "broken", "61 3 * * *", ECHO)
    assert bad.returncode != 0
    assert "minute field '61'" in bad.stderr
    assert strato(data_dir, "add", "nightly", "0 4 * * *", ECHO).returncode != 0

    shown = json.loads(strato(data_dir, "show", "nightly").stdout)
    assert shown["cron"] == "0 3 * * *"
    assert (shown["timezone"], shown["inputs"], shown["owner"]) == (
        "Europe/Berlin",
        {"a": 1},
        "alice",
    )
    assert shown["process_id"] == ECHO
    assert datetime.fromisoformat(shown["next_run"]).astimezone(UTC).minute == 0

    assert strato(data_dir, "disable", "nightly").returncode == 0
    listed = strato(data_dir, "list").stdout.splitlines()
    assert len(listed) == 1
    assert listed[0].startswith("nightly  disabled")
    assert "next -" in listed[0]
    assert strato(data_dir, "enable", "nightly").returncode == 0
    assert json.loads(strato(data_dir, "show", "nightly").stdout)["next_run"] is not None

    assert strato(data_dir, "remove", "nightly").returncode == 0
    assert strato(data_dir, "list").stdout == ""
    assert strato(data_dir, "remove", "nightly").returncode != 0
