"""A Celery queue as a provider: the workers of `strato endpoint serve --celery BROKER
--queue QUEUE` (:mod:`strato.processes.celery_endpoint`) run the processes.

Each call sends a Celery task to the queue and reads its answer from a reply queue of
its own on the same broker (never a Celery result backend): a listing or a description
is one answer, which must come within ``timeout`` seconds (the task expires then, so a
worker that comes later does not do it for no one); an execution is a stream of events
followed to its end: progress mirrored into this job, result files written into this
job's result directory (served from here as any local result), the outputs returned.
A cancelled job signals its run (its ``ctx.cancelled()`` there), then revokes it with
``terminate`` if it has not stopped within a moment.

Failures say whose fault they are, as the other providers' do: inputs the worker
refuses (or its task's own client errors) keep their 4xx; a broker that cannot be
reached is 502 (a job's start tried again by the job engine: nothing was sent), a queue
no worker answers 504; the broker's address goes to the log, not to users.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from strato.errors import (
    BadGateway,
    GatewayTimeout,
    InvalidInput,
    StratoError,
)
from strato.extras import optional_driver
from strato.job_engine import RetryableTaskError, TaskContext
from strato.processes.celery_endpoint import DESCRIBE, EXECUTE, PROCESSES, plain_name
from strato.processes.model.description import ProcessDescription
from strato.processes.model.errors import CLIENT_ERRORS, RemoteUnreachable
from strato.processes.providers.base import RemoteFailed, description_from_json
from strato.processes.settings import ProviderSettings

if TYPE_CHECKING:
    from celery import Celery
    from kombu import Connection

log = logging.getLogger(__name__)

SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp")
# Seconds a cancelled run has to stop by itself before it is revoked and killed: short,
# as this job's own worker is killed after the engine's cancel grace.
CANCEL_WAIT = 2.0


class CeleryProvider:
    def __init__(self, settings: ProviderSettings) -> None:
        if settings.broker_url is None or not settings.queue:
            raise StratoError(
                f"provider {settings.prefix!r}: kind celery needs broker_url and queue"
            )
        url = settings.broker_url.get_secret_value()
        if urlsplit(url).scheme not in SCHEMES:
            raise StratoError(
                f"provider {settings.prefix!r}: broker_url is a Celery broker's URL "
                f"({', '.join(s + '://' for s in SCHEMES)})"
            )
        self.settings = settings
        self.url = url
        self.queue = settings.queue
        self._app: Celery | None = None

    @property
    def app(self) -> Celery:
        if self._app is None:
            from strato.jobs.celery.app import base_app

            self._app = base_app(self.url, self.queue)
        return self._app

    def where(self) -> str:
        with optional_driver():
            from kombu.utils.url import maybe_sanitize_url

        return f"queue {self.queue!r} on {maybe_sanitize_url(self.url)}"

    # --- a listing, a description: one answer ----------------------------------------

    def processes(self) -> list[ProcessDescription]:
        docs = self._ask(PROCESSES, {}).get("processes", [])
        found = []
        for doc in docs if isinstance(docs, list) else []:
            try:
                found.append(description_from_json(doc))
            except StratoError as exc:
                log.warning("provider %r: a process left out: %s", self.settings.prefix, exc)
        return found

    def describe(self, process_id: str) -> ProcessDescription:
        answer = self._ask(DESCRIBE, {"process": process_id})
        if answer.get("t") == "error":
            error = self._failure(process_id, str(answer.get("reason")))
            if isinstance(error, RemoteFailed):  # not the user's fault: the worker's
                log.warning("provider %r: %s", self.settings.prefix, error.detail)
                raise BadGateway(f"provider {self.settings.prefix!r} failed to describe it")
            raise error
        try:
            return description_from_json(answer.get("process") or {})
        except InvalidInput as exc:  # the worker's fault, not the user's
            log.warning("provider %r: %s", self.settings.prefix, exc.detail)
            raise BadGateway(
                f"provider {self.settings.prefix!r} answered something other than a process "
                "description"
            ) from None

    def _ask(self, task: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        timeout = self.settings.timeout
        with self._replies() as replies:
            rid = replies.send(task, kwargs, expires=timeout)
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                for event in replies.take(min(left, 1.0)):
                    if event.get("run") == rid:
                        return event
        log.warning(
            "provider %r: no worker answered on %s within %g s (is `strato endpoint serve "
            "--celery` running?)",
            self.settings.prefix,
            self.where(),
            timeout,
        )
        raise GatewayTimeout(
            f"provider {self.settings.prefix!r} did not answer in {timeout:g} s: no worker "
            "took the request from its queue"
        )

    # --- an execution: events to its end ----------------------------------------------

    def run(self, process_id: str, inputs: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
        with self._replies(start=True) as replies:
            run_id = replies.send(EXECUTE, {"process": process_id, "inputs": inputs})
            return self._follow(replies, run_id, process_id, ctx)

    def _follow(
        self, replies: _Replies, run_id: str, process_id: str, ctx: TaskContext
    ) -> dict[str, Any]:
        name = f"{process_id!r} at provider {self.settings.prefix!r}"
        files = _Files(ctx.result_dir)
        last = (-1, "")
        starts = 0
        while True:
            if ctx.cancelled():
                self._cancel(replies, run_id)
                raise RemoteFailed("cancelled")
            for event in replies.take(0.2):
                if event.get("run") != run_id:
                    continue
                kind = event.get("t")
                if kind == "started":
                    starts += 1
                    if starts > 1:  # delivered again: its first worker died unheard
                        self._revoke(run_id)
                        raise RetryableTaskError(f"{name}: its worker was lost")
                elif kind == "progress":
                    now = (int(event.get("p") or 0), str(event.get("m") or ""))
                    if now != last:
                        ctx.progress(*now)
                        last = now
                elif kind == "file":
                    files.add(event)
                elif kind == "done":
                    return files.results(name, event)
                elif kind == "fail":
                    reason = str(event.get("reason") or "no reason given")
                    if event.get("retry"):
                        raise RetryableTaskError(f"{name}: {reason}")
                    raise self._failure(process_id, reason)
                elif kind == "lost":
                    self._revoke(run_id)
                    raise RetryableTaskError(f"{name}: {event.get('reason')}")

    def _cancel(self, replies: _Replies, run_id: str) -> None:
        """Ask the run to stop (its ``ctx.cancelled()``); kill it if it goes on."""
        from strato.jobs.celery.app import cancel_exchange

        try:
            replies.signal_cancel(run_id, cancel_exchange())
            deadline = time.monotonic() + CANCEL_WAIT
            while time.monotonic() < deadline:
                ends = [e for e in replies.take(0.1) if e.get("run") == run_id]
                if any(e.get("t") in ("done", "fail") for e in ends):
                    return
        except Exception as exc:
            log.warning("run %s: its cancel could not be signalled: %s", run_id, exc)
        self._revoke(run_id)

    def _revoke(self, run_id: str) -> None:
        # A waiting run is dropped when a worker receives it; a running one's process is
        # killed (SIGKILL: a task may ignore SIGTERM).
        try:
            self.app.control.revoke(run_id, terminate=True, signal="SIGKILL")
        except Exception as exc:
            log.warning("run %s could not be revoked: %s", run_id, exc)

    # --- the reply queue ---------------------------------------------------------------

    def _failure(self, process_id: str, reason: str) -> StratoError:
        """The worker's reason as this job's error: a client's error keeps its class (and
        so its 4xx here), anything else is the remote's failure."""
        said = f"provider {self.settings.prefix!r}"
        kind, _, detail = reason.partition(": ")
        if kind == "InvalidInput" and detail:
            return InvalidInput(f"{said} refused the inputs: {detail}")
        # A client's error keeps its class (by name: nothing in a reason is evaluated),
        # so the job answers with its 4xx.
        if kind in CLIENT_ERRORS and detail:
            return CLIENT_ERRORS[kind](f"{said}: {detail}")
        return RemoteFailed(f"{process_id!r} at {said}: failed: {reason}")

    @contextmanager
    def _replies(self, *, start: bool = False) -> Iterator[_Replies]:
        """A reply queue on a connection of its own. ``start``: for a run, which the job
        engine tries again when the broker could not be reached (nothing was sent)."""
        with optional_driver():
            from kombu import Connection

        conn = Connection(self.url, connect_timeout=min(self.settings.timeout, 10.0))
        try:
            try:
                conn.ensure_connection(max_retries=1, interval_start=0)
            except Exception as exc:
                log.warning(
                    "provider %r: the broker of %s cannot be reached: %s",
                    self.settings.prefix,
                    self.where(),
                    exc,
                )
                unreachable = RemoteUnreachable if start else BadGateway
                raise unreachable(f"provider {self.settings.prefix!r} cannot be reached") from None
            with _Replies(self, conn) as replies:
                yield replies
        finally:
            conn.release()

    def close(self) -> None:
        if self._app is not None:
            self._app.close()


class _Replies:
    """A reply queue of one call, consumed on its own connection."""

    def __init__(self, provider: CeleryProvider, conn: Connection) -> None:
        from kombu import Queue

        self.provider = provider
        self.conn = conn
        self.name = f"strato.processes.replies.{secrets.token_hex(8)}"
        self.queue = Queue(self.name, durable=False, auto_delete=True)
        self._got: list[dict[str, Any]] = []

    def __enter__(self) -> _Replies:
        def on_message(body: Any, message: Any) -> None:
            if isinstance(body, dict):
                self._got.append(body)

        # Declared and consumed before anything is sent: no answer comes before it.
        self._consumer = self.conn.Consumer(
            self.queue, accept=["json"], no_ack=True, callbacks=[on_message]
        )
        self._consumer.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._consumer.__exit__(None, None, None)
        except Exception as error:  # the connection may be the reason we leave
            log.debug("reply queue %s: %s", self.name, error)

    def send(self, task: str, kwargs: dict[str, Any], expires: float | None = None) -> str:
        run_id = secrets.token_hex(16)
        options: dict[str, Any] = {}
        if expires is not None:
            # Dropped by a worker that takes it later (Celery), or by RabbitMQ itself
            # (the message's TTL, in milliseconds): nobody waits for its answer then.
            options["expires"] = expires
            options["expiration"] = expires
        try:
            self.provider.app.send_task(
                task,
                kwargs={**kwargs, "run": run_id, "reply": self.name},
                task_id=run_id,
                queue=self.provider.queue,
                ignore_result=True,
                producer=self.conn.Producer(),
                **options,
            )
        except self.conn.connection_errors as exc:
            log.warning("reply queue %s: the task could not be sent: %s", self.name, exc)
            raise BadGateway(
                f"provider {self.provider.settings.prefix!r}: its broker took no request"
            ) from None
        return run_id

    def take(self, timeout: float) -> list[dict[str, Any]]:
        """The events come in ``timeout`` seconds (at least one, or none at its end)."""
        if not self._got:
            try:
                self.conn.drain_events(timeout=timeout)
            except TimeoutError:
                pass
            except self.conn.connection_errors as exc:
                log.warning("reply queue %s: the broker connection was lost: %s", self.name, exc)
                raise BadGateway(
                    f"provider {self.provider.settings.prefix!r}: the connection to its broker "
                    "was lost"
                ) from None
        got, self._got = self._got, []
        return got

    def signal_cancel(self, run_id: str, exchange: Any) -> None:
        self.conn.Producer().publish(
            {"job": run_id},
            exchange=exchange,
            routing_key="",
            serializer="json",
            declare=[exchange],
        )


class _Files:
    """Result files of a run, written as their chunks come (in order, on one channel)."""

    def __init__(self, result_dir: Path) -> None:
        self.dir = result_dir
        self.chunks: dict[str, int] = {}

    def add(self, event: dict[str, Any]) -> None:
        name, seq = event.get("file"), event.get("seq")
        if not plain_name(name) or not isinstance(seq, int):
            raise RemoteFailed("the worker sent a result file that is not one")
        assert isinstance(name, str)
        if seq != self.chunks.get(name, 0):
            raise RemoteFailed(f"result file {name!r}: a chunk is missing")
        try:
            data = base64.b64decode(str(event.get("data", "")), validate=True)
        except (binascii.Error, ValueError):
            raise RemoteFailed(f"result file {name!r}: a chunk is not base64") from None
        with (self.dir / name).open("wb" if seq == 0 else "ab") as f:
            f.write(data)
        self.chunks[name] = seq + 1

    def results(self, name: str, event: dict[str, Any]) -> dict[str, Any]:
        results = event.get("out")
        if not isinstance(results, dict):
            raise RemoteFailed(f"{name}: the worker's outputs are not a JSON object")
        for entry in event.get("files") or []:
            try:
                output, filename, media, chunks = entry
            except (TypeError, ValueError):
                raise RemoteFailed(f"{name}: the worker's files are not a list") from None
            if not plain_name(filename) or self.chunks.get(filename) != chunks:
                raise RemoteFailed(f"{name}: results cut short ({filename!r})")
            results[str(output)] = {"href": filename, "type": str(media)}
        return results
