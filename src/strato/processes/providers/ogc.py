"""A remote OGC API - Processes server as a provider (another strato node or any
implementation), over HTTP with httpx: described, executed asynchronously, followed to
its end, its results fetched; what the server says when it refuses is the job's reason."""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import quote

import httpx

from strato.errors import InvalidInput, StratoError, Unavailable
from strato.job_engine import RetryableTaskError, TaskContext
from strato.processes.model.description import ProcessDescription
from strato.processes.model.errors import NoSuchProcess
from strato.processes.providers.base import RemoteFailed, description_from_json
from strato.processes.settings import ProviderSettings

log = logging.getLogger(__name__)

# Statuses are polled (OGC API - Processes has no push but callbacks, which need this
# node reachable from the remote one): quickly first, then at most every FOLLOW_CAP s.
FOLLOW_FIRST = 0.05
FOLLOW_CAP = 1.0
_FINISHED = ("successful", "failed", "dismissed")


class OgcProvider:
    def __init__(self, settings: ProviderSettings) -> None:
        if not settings.url:
            raise StratoError(f"provider {settings.prefix!r}: kind ogc needs a url")
        self.settings = settings
        self.url = settings.url.rstrip("/")
        headers = {"Accept": "application/json"}
        if settings.token is not None:
            headers["Authorization"] = f"Bearer {settings.token.get_secret_value()}"
        self._client = httpx.Client(headers=headers, timeout=settings.timeout)

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            answer = self._client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"provider {self.settings.prefix!r} ({self.url}) cannot be reached: "
                f"{type(exc).__name__}"
            ) from None
        if answer.status_code >= 400:
            raise _problem(self.settings.prefix, answer)
        return answer

    def processes(self) -> list[ProcessDescription]:
        listed = self._call("GET", f"{self.url}/processes").json().get("processes", [])
        found = []
        for summary in listed:
            try:
                found.append(self.describe(str(summary["id"])))
            except (StratoError, KeyError, TypeError) as exc:
                log.warning("provider %r: a process left out: %s", self.settings.prefix, exc)
        return found

    def describe(self, process_id: str) -> ProcessDescription:
        doc = self._call("GET", f"{self.url}/processes/{quote(process_id, safe='')}").json()
        return description_from_json(doc)

    def run(self, process_id: str, inputs: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
        try:
            answer = self._call(
                "POST",
                f"{self.url}/processes/{quote(process_id, safe='')}/execution",
                json={"inputs": inputs, "response": "document"},
                headers={"Prefer": "respond-async"},
            )
        except Unavailable as exc:
            raise RetryableTaskError(str(exc)) from None
        if answer.status_code == 200:  # a server that runs it synchronously anyway
            return dict(answer.json())
        location = answer.headers.get("Location") or _self_link(answer.json())
        job = str(httpx.URL(self.url + "/").join(location))
        status = self._follow(job, ctx)
        if status["status"] != "successful":
            raise RemoteFailed(
                f"{self.settings.prefix}{process_id}: {status['status']}: "
                f"{status.get('message') or 'no reason given'}"
            )
        return dict(self._call("GET", f"{job}/results").json())

    def _follow(self, job: str, ctx: TaskContext) -> dict[str, Any]:
        pause = FOLLOW_FIRST
        last = (-1, "")
        while True:
            if ctx.cancelled():
                try:
                    self._call("DELETE", job)
                except StratoError as exc:
                    log.warning("remote job %s could not be dismissed: %s", job, exc)
                raise RemoteFailed("cancelled")
            status = dict(self._call("GET", job).json())
            now = (int(status.get("progress") or 0), str(status.get("message") or ""))
            if now != last:
                ctx.progress(*now)
                last = now
            if status.get("status") in _FINISHED:
                return status
            time.sleep(pause)
            pause = min(pause * 2, FOLLOW_CAP)

    def close(self) -> None:
        self._client.close()


def _self_link(status: dict[str, Any]) -> str:
    for link in status.get("links", []):
        if link.get("rel") in ("self", "monitor"):
            return str(link["href"])
    raise RemoteFailed("the server created a job but did not say where it is")


def _problem(prefix: str, answer: httpx.Response) -> StratoError:
    """The remote's problem as ours: a missing process stays 404 no-such-process, a
    refusal of the inputs 400, anything else the remote's reason."""
    try:
        body = answer.json()
        detail = str(body.get("detail") or body.get("description") or body.get("title"))
        kind = str(body.get("type", ""))
    except ValueError:
        detail, kind = answer.text[:200], ""
    if answer.status_code == 404 and ("no-such-process" in kind or "process" in detail):
        return NoSuchProcess(f"provider {prefix!r}: {detail}")
    if answer.status_code == 400:
        return InvalidInput(f"provider {prefix!r}: {detail}")
    return RemoteFailed(f"provider {prefix!r} answered {answer.status_code}: {detail}")
