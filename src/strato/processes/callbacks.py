"""Subscriber callbacks (OGC API - Processes, conformance class "callback"): the
statusInfo POSTed to ``inProgressUri`` when an asynchronous job is accepted, its results
to ``successUri`` or its statusInfo to ``failedUri`` when it ends.

Never in the way of a request: each subscription is a task of the server's event loop,
woken by the job engine when the job ends (no polling), its requests bounded in time,
in number of tries and in how many are in flight at once. A callback that cannot be
delivered is logged and dropped; the job is not affected."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx

from strato.job_engine import JobEngine, JobRecord, JobStatus
from strato.processes.model.execute import Subscriber
from strato.processes.settings import ProcessesSettings
from strato.redact import mask_url
from strato.retry import Backoff

log = logging.getLogger(__name__)

_BACKOFF = Backoff(first=0.5, cap=10.0)

# (job, api base URL) -> the JSON document to send
Document = Callable[[JobRecord], dict[str, Any]]


class Callbacks:
    def __init__(self, jobs: JobEngine, settings: ProcessesSettings) -> None:
        self.jobs = jobs
        self.settings = settings
        self._client: httpx.AsyncClient | None = None
        self._slots = asyncio.Semaphore(settings.callback_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # No redirects: a callback URL is the subscriber's, not wherever it points.
            self._client = httpx.AsyncClient(
                timeout=self.settings.callback_timeout, follow_redirects=False
            )
        return self._client

    def watch(
        self, job: JobRecord, subscriber: Subscriber, status: Document, results: Document
    ) -> None:
        """Send ``subscriber`` its callbacks for ``job``, in the background."""
        task = asyncio.get_running_loop().create_task(
            self._follow(job, subscriber, status, results), name=f"callbacks-{job.id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow(
        self, job: JobRecord, subscriber: Subscriber, status: Document, results: Document
    ) -> None:
        try:
            if subscriber.in_progress_uri and not job.done:
                await self._send(subscriber.in_progress_uri, status(job), job.id)
            if not (subscriber.success_uri or subscriber.failed_uri):
                return
            ended = job if job.done else await self.jobs.wait(job.id, timeout=None)
            if ended.status is JobStatus.successful and subscriber.success_uri:
                await self._send(subscriber.success_uri, results(ended), job.id)
            elif ended.status is JobStatus.failed and subscriber.failed_uri:
                await self._send(subscriber.failed_uri, status(ended), job.id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("callbacks of job %s stopped", job.id)

    async def _send(self, uri: str, document: dict[str, Any], job_id: str) -> None:
        attempts = self.settings.callback_attempts
        for attempt in range(1, attempts + 1):
            try:
                async with self._slots:
                    answer = await self._http().post(uri, json=document)
                if answer.status_code < 500:
                    if answer.status_code >= 400:
                        log.warning(
                            "callback of job %s to %s refused: %s",
                            job_id,
                            mask_url(uri),
                            answer.status_code,
                        )
                    return
                reason = f"HTTP {answer.status_code}"
            except httpx.HTTPError as exc:
                reason = type(exc).__name__
            if attempt < attempts:
                await asyncio.sleep(_BACKOFF.delay(attempt))
        log.warning(
            "callback of job %s to %s not delivered after %d tries: %s",
            job_id,
            mask_url(uri),
            attempts,
            reason,
        )

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
