"""A node's processes served from a Celery queue (`strato endpoint serve --celery`): the
worker's side of the ``celery`` provider (:mod:`strato.processes.providers.celery_queue`).

Three tasks, on the Celery application of the job engine's celery executor (JSON only,
late acks, a message given back to the broker when its worker process dies): a listing,
a description and an execution. None has a result in a Celery result backend: each
answers on the reply queue its message names, as JSON events carrying the ``run`` id
the caller chose. An execution's events are those of the job engine's celery workers
(``started``, ``progress``, ``done``, ``fail``, ``lost``), with the result files the
outputs reference sent before ``done`` as ``file`` events of base64 chunks (never
pickled), all on one producer so that they arrive in order. A cancelled run hears it
through the executor's fanout exchange (``ctx.cancelled()``); one that does not stop is
killed by a revoke with ``terminate``.

Inputs are checked here again against the process's description: a message on the
broker may come from anyone who can write there, not only from a node that checked them.
"""

from __future__ import annotations

import base64
import logging
import shutil
import sys
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strato.errors import InvalidInput, StratoError
from strato.extras import optional_driver
from strato.jobs.celery.app import base_app, cancel_listener, lost_run_request
from strato.jobs.local.worker import ServerSettings
from strato.jobs.model.jobs import reason_of
from strato.jobs.remote.task import execute
from strato.processes.model.errors import NoSuchProcess
from strato.processes.model.validation import validate_inputs
from strato.processes.registry import Registered, Registry
from strato.settings import Settings, settings_to_json

if TYPE_CHECKING:
    from celery import Celery
    from kombu import Producer

log = logging.getLogger(__name__)

PROCESSES = "strato.endpoint.processes"
DESCRIBE = "strato.endpoint.describe"
EXECUTE = "strato.endpoint.execute"
# Bytes of a result file per message (about 1.4 MB once in base64): well under what
# either broker takes in one message (RabbitMQ's default limit is 128 MiB).
CHUNK = 1 << 20
# Most bytes of result files one run sends back; past it the run fails, saying so,
# rather than answering with a reference the caller cannot open.
MAX_FILES = 512 << 20


def plain_name(name: Any) -> bool:
    """A file name alone, as a job's result directory holds it: no path, nothing hidden."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= 255
        and "/" not in name
        and "\\" not in name
        and not name.startswith(".")
        and "\0" not in name
    )


class Offered:
    """The processes a worker offers: the node's endpoints (all, or those named), run
    with the node's settings (``ctx.settings``) in run directories of their own."""

    def __init__(
        self, registry: Registry, settings: Settings, processes: Collection[str] = ()
    ) -> None:
        self.registry = registry
        self.exposed = frozenset(processes)
        self.runs = Path(settings.data_dir) / "endpoint-runs"
        self.settings = ServerSettings()
        self.settings.give(settings_to_json(settings))

    def offers(self, process_id: str) -> bool:
        return not self.exposed or process_id in self.exposed

    def all(self) -> list[Registered]:
        return [r for r in self.registry.all() if self.offers(r.id)]

    def get(self, process_id: Any) -> Registered:
        if not isinstance(process_id, str) or not self.offers(process_id):
            raise NoSuchProcess(f"no process {process_id!r} is offered here")
        return self.registry.get(process_id)


def make_endpoint_app(broker_url: str, queue: str, offered: Offered) -> Celery:
    with optional_driver():
        from celery.exceptions import SoftTimeLimitExceeded

    app = base_app(broker_url, queue)

    def processes(self: Any, **message: Any) -> None:
        docs = [r.description.to_json() for r in offered.all()]
        _answer(app, message, {"t": "processes", "processes": docs})

    def describe(self: Any, **message: Any) -> None:
        try:
            doc = offered.get(message.get("process")).description.to_json()
        except StratoError as exc:
            _answer(app, message, {"t": "error", "reason": reason_of(exc)})
            return
        _answer(app, message, {"t": "process", "process": doc})

    def run(self: Any, **message: Any) -> None:
        if not _replies_to(message):
            log.warning("an execution that names no run or reply queue: dropped")
            return
        run_id = str(message["run"])
        with _publisher(app, message) as publish:
            try:
                registered = offered.get(message.get("process"))
                inputs = message.get("inputs")
                if not isinstance(inputs, dict):
                    raise InvalidInput("inputs is a JSON object")
                values = validate_inputs(registered.description, inputs)
                if registered.route is not None:  # this worker's own provider's process
                    from strato.processes.providers.forward import wrap

                    values = wrap(*registered.route, values)
            except StratoError as exc:
                publish({"t": "fail", "reason": reason_of(exc), "retry": False})
                return
            work = offered.runs / run_id
            try:
                execute(
                    {
                        "job": run_id,
                        "run": run_id,
                        "task": registered.task,
                        "inputs": values,
                        "dir": str(work),
                        "limit": None,
                    },
                    lambda event: _send(publish, event, work),
                    cancel_listener(app),
                    time_limit_errors=(SoftTimeLimitExceeded,),
                    settings=offered.settings,
                )
            finally:
                shutil.rmtree(work, ignore_errors=True)

    options: dict[str, Any] = {"bind": True, "acks_late": True, "ignore_result": True}
    app.task(name=PROCESSES, **options)(processes)
    app.task(name=DESCRIBE, **options)(describe)
    app.task(name=EXECUTE, Request=lost_run_request(app), **options)(run)
    return app


def _replies_to(message: dict[str, Any]) -> bool:
    return isinstance(message.get("run"), str) and isinstance(message.get("reply"), str)


def _answer(app: Celery, message: dict[str, Any], event: dict[str, Any]) -> None:
    if not _replies_to(message):
        log.warning("a request that names no run or reply queue: dropped")
        return
    with _publisher(app, message) as publish:
        publish(event)


@contextmanager
def _publisher(app: Celery, message: dict[str, Any]) -> Iterator[Any]:
    """A function publishing events of ``message``'s run to its reply queue, all through
    one producer (one channel: the broker keeps their order), from any thread."""
    lock = threading.Lock()
    reply, run_id = str(message["reply"]), str(message["run"])
    with app.producer_or_acquire() as producer:

        def publish(event: dict[str, Any]) -> None:
            event["run"] = run_id
            with lock:
                _publish(producer, reply, event)

        yield publish


def _publish(producer: Producer, reply: str, event: dict[str, Any]) -> None:
    producer.publish(event, exchange="", routing_key=reply, serializer="json", retry=True)


def _send(publish: Any, event: dict[str, Any], work: Path) -> None:
    """An event of a run; before ``done``, the files its outputs reference."""
    if event.get("t") == "done":
        try:
            event["files"] = _send_files(publish, event.get("out") or {}, work)
        except StratoError as exc:
            event = {"t": "fail", "reason": reason_of(exc), "retry": False}
    publish(event)


def _send_files(publish: Any, outputs: dict[str, Any], work: Path) -> list[list[Any]]:
    """Each file of the run directory an output references by name, in chunks; what was
    sent, as ``[output, file name, media type, chunks]``."""
    found: list[tuple[str, Path, str]] = []
    total = 0
    for name, value in outputs.items():
        if not isinstance(value, dict) or not plain_name(value.get("href")):
            continue
        path = work / value["href"]
        if not path.is_file():
            continue
        total += path.stat().st_size
        found.append((name, path, str(value.get("type") or "application/x-netcdf")))
    if total > MAX_FILES:
        raise StratoError(
            f"the result files are {total} bytes, more than the {MAX_FILES} a run sends back"
        )
    sent: list[list[Any]] = []
    for name, path, media in found:
        seq = 0
        with path.open("rb") as f:
            while True:
                data = f.read(CHUNK)
                publish(
                    {
                        "t": "file",
                        "file": path.name,
                        "seq": seq,
                        "data": base64.b64encode(data).decode("ascii"),
                    }
                )
                seq += 1
                if len(data) < CHUNK:
                    break
        sent.append([name, path.name, media, seq])
    return sent


def serve(
    settings: Settings,
    broker_url: str,
    queue: str,
    *,
    processes: Collection[str] = (),
    concurrency: int,
    loglevel: str = "WARNING",
    visibility_timeout: float = 12 * 3600,
) -> None:
    """Run a Celery worker on ``queue`` offering this node's processes, until stopped.

    ``visibility_timeout``: on Redis, a message not acknowledged in that many seconds is
    delivered again (to find the runs of a worker that died whole); a longer run would be
    run twice, so it is longer than Celery's hour."""
    from strato.processes.providers.base import Providers
    from strato.processes.settings import ProcessesSettings

    options = ProcessesSettings.of(settings)
    providers = Providers(options.providers) if options.providers else None
    offered = Offered(Registry.from_entry_points(providers), settings, processes)
    app = make_endpoint_app(broker_url, queue, offered)
    app.conf.broker_transport_options = {"visibility_timeout": visibility_timeout}
    with optional_driver():
        from celery.signals import worker_ready
        from kombu.utils.url import maybe_sanitize_url

    def ready(**_: Any) -> None:
        # The line a supervisor (or a test) waits for: the worker consumes the queue.
        print(f"  celery:    {maybe_sanitize_url(broker_url)} queue {queue}", flush=True)
        sys.stdout.flush()

    worker_ready.connect(ready, weak=False)
    app.worker_main(
        [
            "worker",
            "--queues",
            queue,
            "--concurrency",
            str(concurrency),
            "--loglevel",
            loglevel,
            "--pool",
            "prefork",  # a process per run: what revoke(terminate) and time limits kill
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"strato-endpoint-{queue}@%h",
        ]
    )
