"""Pipeline runs driven by Celery workers (``pipelines.driver = "celery"``), as Centro ran
them: the web servers only write runs and send them to a queue, `strato pipelines worker`
processes drive them (the same :class:`~strato.pipelines.runner.RunDriver` a server
uses, under the same leases), and `strato scheduler` sends again, every
``pipelines.sweep_seconds``, the runs nobody drives: those of a worker that died, once
their leases have run out, and those whose message was lost. That is a Celery beat's
role, done without beat's schedule file (a shelve: pickles on disk).

Messages are JSON, carrying a run's id and nothing else; a message is acknowledged when
a worker takes it (a run may last days, longer than any broker's redelivery timeout):
the lease, not the message, says whether a run is driven. A worker that is asked to
stop gives its runs up at once, for another to take.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import sys
import threading
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from strato.db import utcnow
from strato.extras import optional_driver
from strato.pipelines.store import RunStore

if TYPE_CHECKING:
    from celery import Celery
    from sqlalchemy import Engine

    from strato.pipelines.service import PipelineRuns
    from strato.pipelines.settings import PipelinesSettings
    from strato.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

DRIVE = "strato.pipelines.drive"
RUN_ID = re.compile(r"^[0-9a-f]{1,64}$")


def make_app(options: PipelinesSettings) -> Celery:
    from strato.jobs.celery.app import base_app

    if not options.celery_broker:
        raise ValueError("pipelines.driver = celery needs pipelines.celery_broker")
    app = base_app(options.celery_broker, options.celery_queue)
    app.conf.update(task_acks_late=False, task_reject_on_worker_lost=False)
    return app


class Dispatch:
    """The servers' side: a run sent to the workers."""

    def __init__(self, options: PipelinesSettings) -> None:
        self.app = make_app(options)
        self.queue = options.celery_queue

    def send(self, run_id: str) -> None:
        self.app.send_task(DRIVE, kwargs={"run": run_id}, queue=self.queue, ignore_result=True)

    async def __call__(self, run_id: str) -> None:
        await asyncio.to_thread(self.send, run_id)


def sweep(store: RunStore, dispatch: Dispatch) -> list[str]:
    """Sends the runs nobody drives to the workers; their ids. A run sent twice is driven
    once: the second message finds it claimed."""
    found = store.claimable(utcnow())
    for run_id in found:
        dispatch.send(run_id)
    return found


class Sweeper:
    """`strato scheduler`'s part for pipelines: :func:`sweep` every ``seconds``."""

    def __init__(self, engine: Engine, options: PipelinesSettings) -> None:
        self.store = RunStore(engine)
        self.dispatch = Dispatch(options)
        self.seconds = options.sweep_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pipeline-sweep", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                sent = sweep(self.store, self.dispatch)
            except Exception as exc:  # the database or the broker down a while
                log.warning("pipeline runs nobody drives not looked for: %s", exc)
                continue
            if sent:
                log.info("sent %d pipeline runs nobody drove to the workers", len(sent))

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


def sweeper_for(settings: Settings, engine: Engine) -> Sweeper | None:
    """The sweeper `strato scheduler` runs, if pipelines are on and driven by Celery."""
    from strato.pipelines.settings import PipelinesSettings

    try:
        options = PipelinesSettings.of(settings)
    except LookupError:  # the pipelines capability is switched off
        return None
    if options.driver != "celery":
        return None
    return Sweeper(engine, options)


class Worker:
    """A worker process's runs: one event loop in a thread of its own drives every run
    the process holds (each Celery task, on a thread of the pool, waits for its run)."""

    def __init__(self, engine: Engine, options: PipelinesSettings, settings: Settings) -> None:
        self.loop = _new_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="pipeline-runs")
        self._thread.start()
        self.runs: PipelineRuns = self.call(self._open(engine, options, settings))
        self._closed = False

    @staticmethod
    async def _open(engine: Engine, options: PipelinesSettings, settings: Settings) -> Any:
        from strato.pipelines.service import open_runs

        return open_runs(engine, options, settings, sweep=False)

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def drive(self, run_id: Any) -> None:
        if not isinstance(run_id, str) or not RUN_ID.match(run_id):
            log.warning("a pipeline run message without a run id: dropped")
            return
        if self._closed:
            return
        run = self.call(self.runs.drive(run_id))
        if run is not None:
            log.info("pipeline run %s %s", run_id, run.state.value)

    def close(self) -> None:
        """Gives the runs up (for another worker) and stops the loop."""
        if self._closed:
            return
        self._closed = True
        self.call(self.runs.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's when it is installed, as uvicorn picks for the servers: the runner's work
    per task is a fifth less on it (bench/pipelines.py)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def serve(
    settings: Settings,
    engine: Engine,
    *,
    concurrency: int,
    loglevel: str = "WARNING",
) -> None:
    """Runs a Celery worker driving pipeline runs until stopped (SIGTERM/SIGINT: its
    runs are given up at once, their tasks left running for the next driver to follow)."""
    from strato.pipelines.settings import PipelinesSettings

    options = PipelinesSettings.of(settings)
    app = make_app(options)
    worker = Worker(engine, options, settings)

    def drive(self: Any, **message: Any) -> None:
        worker.drive(message.get("run"))

    app.task(name=DRIVE, bind=True, ignore_result=True)(drive)
    with optional_driver():
        from celery.signals import worker_ready, worker_shutting_down
        from kombu.utils.url import maybe_sanitize_url

    def ready(**_: Any) -> None:
        # The line a supervisor (or a test) waits for: the worker consumes the queue.
        broker = maybe_sanitize_url(options.celery_broker)
        print(f"  pipelines: {broker} queue {options.celery_queue}", flush=True)

    def stopping(**_: Any) -> None:
        # Celery's warm shutdown waits for its tasks, here runs of hours: given up first.
        threading.Thread(target=worker.close, name="pipeline-runs-close").start()

    worker_ready.connect(ready, weak=False)
    worker_shutting_down.connect(stopping, weak=False)
    try:
        app.worker_main(
            [
                "worker",
                "--queues",
                options.celery_queue,
                "--concurrency",
                str(concurrency),
                "--loglevel",
                loglevel,
                "--pool",
                "threads",  # one event loop drives every run of the process
                "--without-gossip",
                "--without-mingle",
                "--hostname",
                f"strato-pipelines-{options.node_name or '%h'}@%h",
            ]
        )
    finally:
        worker.close()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        sys.stdout.flush()
