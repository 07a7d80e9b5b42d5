"""A remote OGC API - Processes server as a provider (another strato node or any
implementation), over HTTP with httpx: described, executed asynchronously, followed to
its end, its results fetched; what the server says when it refuses is the job's reason.

The remote's refusals keep their meaning here: inputs it refuses are this node's 400,
a process it lacks 404 no-such-process, a job of it that failed on its inputs a failed
job here whose reason is the remote's. A remote that cannot be reached, or answers what
no OGC server would, is a gateway error (502, 504), never a traceback."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any
from urllib.parse import quote

import httpx

from strato.errors import (
    BadGateway,
    GatewayTimeout,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    StratoError,
)
from strato.job_engine import TaskContext
from strato.processes.model.description import ProcessDescription
from strato.processes.model.errors import NoSuchProcess, RemoteUnreachable, remote_reason
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

    def _call(self, method: str, url: str, *, start: bool = False, **kwargs: Any) -> httpx.Response:
        """The remote's answer, its refusals as ours (:func:`_problem`). ``start``: the
        request that starts a job there, which is tried again (the job engine's retry)
        when it reached nothing. The remote's address goes to the log, not to the user."""
        prefix = self.settings.prefix
        try:
            answer = self._client.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            log.warning("provider %r: %s %s: cannot connect: %s", prefix, method, url, exc)
            unreachable = RemoteUnreachable if start else BadGateway
            raise unreachable(f"provider {prefix!r} cannot be reached") from None
        except httpx.TimeoutException as exc:
            # Sent, and no answer in time: a job may have started there, so not tried again.
            log.warning("provider %r: %s %s: %s", prefix, method, url, type(exc).__name__)
            raise GatewayTimeout(
                f"provider {prefix!r} did not answer in {self.settings.timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            log.warning("provider %r: %s %s: %s", prefix, method, url, exc)
            raise BadGateway(
                f"provider {prefix!r} broke off its answer ({type(exc).__name__})"
            ) from None
        if answer.status_code >= 400:
            raise _problem(prefix, answer)
        return answer

    def _json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        return _document(self.settings.prefix, self._call(method, url, **kwargs))

    def processes(self) -> list[ProcessDescription]:
        listed = self._json("GET", f"{self.url}/processes").get("processes", [])
        found = []
        for summary in listed if isinstance(listed, list) else []:
            try:
                found.append(self.describe(str(summary["id"])))
            except (StratoError, KeyError, TypeError) as exc:
                log.warning("provider %r: a process left out: %s", self.settings.prefix, exc)
        return found

    def describe(self, process_id: str) -> ProcessDescription:
        doc = self._json("GET", f"{self.url}/processes/{quote(process_id, safe='')}")
        return description_from_json(doc)

    def run(self, process_id: str, inputs: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
        prefix = self.settings.prefix
        answer = self._call(
            "POST",
            f"{self.url}/processes/{quote(process_id, safe='')}/execution",
            start=True,
            json={"inputs": inputs, "response": "document"},
            headers={"Prefer": "respond-async"},
        )
        if answer.status_code == 200:  # a server that runs it synchronously anyway
            return _document(prefix, answer)
        location = answer.headers.get("Location") or _self_link(prefix, _document(prefix, answer))
        job = str(httpx.URL(self.url + "/").join(location))
        status = self._follow(job, ctx)
        if status.get("status") == "failed":
            # Its results are the remote's problem saying why, with the status that says
            # whose fault it was (OGC API - Processes answers a failed job's results with
            # its exception): 400 for inputs it refused is raised here as InvalidInput.
            # A server whose answer says nothing more leaves the status's message.
            with contextlib.suppress(BadGateway):
                self._call("GET", f"{job}/results")
        if status.get("status") != "successful":
            raise RemoteFailed(
                f"{process_id!r} at provider {prefix!r}: {status.get('status')}: "
                f"{status.get('message') or 'no reason given'}"
            )
        return self._json("GET", f"{job}/results")

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
            status = self._json("GET", job)
            try:
                now = (int(status.get("progress") or 0), str(status.get("message") or ""))
            except (TypeError, ValueError):
                now = last
            if now != last:
                ctx.progress(*now)
                last = now
            if status.get("status") in _FINISHED:
                return status
            time.sleep(pause)
            pause = min(pause * 2, FOLLOW_CAP)

    def close(self) -> None:
        self._client.close()


def _document(prefix: str, answer: httpx.Response) -> dict[str, Any]:
    """The JSON object an answer carries; BadGateway when it carries none."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise BadGateway(f"provider {prefix!r} answered something other than a JSON object")
    return body


def _self_link(prefix: str, status: dict[str, Any]) -> str:
    for link in status.get("links", []):
        if isinstance(link, dict) and link.get("rel") in ("self", "monitor"):
            return str(link["href"])
    raise BadGateway(f"provider {prefix!r} created a job but did not say where it is")


def _problem(prefix: str, answer: httpx.Response) -> StratoError:
    """The remote's problem as ours, by whose fault it is. The user's: inputs it refuses
    400 (422 is how some servers refuse a body), a process it lacks 404 no-such-process,
    what it did not find 404, too much asked 413, each with the remote's reason. Not the
    user's: its own failure, or a refusal of this node (its token, a job of this node it
    lost), a gateway error (502); a process that crashed there RemoteFailed (500)."""
    try:
        body = answer.json()
        body = body if isinstance(body, dict) else {}
    except ValueError:
        body = {}
    detail = str(
        body.get("detail") or body.get("description") or body.get("title") or answer.text[:200]
    )
    reason = remote_reason(detail[:2000])
    kind = str(body.get("type", ""))
    status = answer.status_code
    said = f"provider {prefix!r}"
    if status == 404 and (
        "no-such-process" in kind
        or body.get("code") == "NoSuchProcess"  # pygeoapi's OGC exception report
        or ("process" in detail.lower() and not kind.endswith("no-such-job"))
    ):
        return NoSuchProcess(f"{said}: {reason}")
    if status == 404 and not kind.endswith(("no-such-job", "result-not-ready")):
        return NotFound(f"{said}: {reason}")
    if status in (400, 422):
        return InvalidInput(f"{said} refused the inputs: {reason}")
    if status == 413:
        return PayloadTooLarge(f"{said}: {reason}")
    if status == 500 and kind.endswith("process-failed"):
        return RemoteFailed(f"{said}: {reason}")
    return BadGateway(f"{said} answered {status}: {reason}")
