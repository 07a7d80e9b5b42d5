"""A job's status and results answered straight from the ASGI scope.

A client that runs a process asynchronously asks for the job's status (often holding
it with ``Prefer: wait``) and then its results: two requests per execution, each for a
record the engine holds in memory. FastAPI's routing (about 80 routes tried before
``/processes-api/jobs/{jobID}``) and its dependency resolution cost more than answering
them (measured in ``bench/processes.py``). This middleware answers the plain case itself
-- ``GET`` of a job's status or results as JSON, with a bearer token checked lately that
carries the ``process`` scope, for a job of the caller's that the engine holds in memory
and that is not a workflow -- and hands everything else to the application, which
answers as it always does (pages, errors such as results not ready, other users' jobs,
unknown tokens, workflows, jobs read from the database). The answer is the same either
way: same status, body and headers, built by the same functions.

A fast path: ``processes.fast_job_requests = false`` turns it off, and
tests/processes/test_fast_jobs.py checks both paths give the same answers. What
justifies it: bench/RESULTS.md, OGC API - Processes over HTTP (the run of 2026-12-05
with the setting on and off).
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from strato.auth import IdentityStore
from strato.auth import Scope as Scopes
from strato.errors import StratoError
from strato.job_engine import JobRecord
from strato.processes.api.urls import PREFIX, api_url
from strato.processes.model.execute import preferred_wait
from strato.processes.model.status import results_document, status_info
from strato.processes.service import ProcessService, results_of
from strato.processes.workflows.plan import WORKFLOW

_PATH = re.compile(r"^" + re.escape(PREFIX) + r"/jobs/([^/]+)(/results)?$")
# Headers the application would act on differently: with any of them, it answers.
_DEFER = (b"cookie", b"if-none-match", b"if-modified-since", b"range")


class _Route(NamedTuple):
    # What the request-context middleware reads to label metrics: the route's template.
    path: str


_STATUS = _Route(PREFIX + "/jobs/{jobID}")
_RESULTS = _Route(PREFIX + "/jobs/{jobID}/results")


class JobRequestsFastPath:
    def __init__(
        self,
        app: ASGIApp,
        *,
        service: ProcessService,
        identities: IdentityStore,
        public_url: str | None,
    ) -> None:
        self.app = app
        self.service = service
        self.identities = identities
        self.public_url = public_url
        options = service.settings
        self.status_wait = options.status_wait_seconds
        # Off (processes.fast_job_requests = false): every request goes to the application.
        self.enabled = options.fast_job_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.enabled or scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        match = _PATH.match(scope["path"])
        answer = None if match is None else await self._answer(scope, *match.groups())
        if answer is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = _RESULTS if match and match.group(2) else _STATUS
        await answer(scope, receive, send)

    async def _answer(self, scope: Scope, job_id: str, results: str | None) -> JSONResponse | None:
        headers = _headers(scope)
        if headers is None or not _json_asked(scope, headers):
            return None
        token = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, secret = token.partition(" ")
        if scheme.lower() != "bearer" or not secret:
            return None
        who = self.identities.cached_token(secret)
        if who is None or not who.allows(Scopes.PROCESS):
            return None
        try:
            job = self.service.job_in_memory(job_id, who)
        except StratoError:  # another user's: the application says so
            return None
        if job is None or job.process_id == WORKFLOW:
            return None
        api = api_url(self.public_url, Request(scope))
        if results:
            return self._results(job, api)
        return await self._status(job, api, headers)

    def _results(self, job: JobRecord, api: str) -> JSONResponse | None:
        try:
            done = results_of(job)
        except StratoError:  # not ready, failed, dismissed: the application's problem
            return None
        link = {"Link": f'<{api}/jobs/{done.id}>; rel="up"'}
        return JSONResponse(results_document(done, api), headers=link)

    async def _status(
        self, job: JobRecord, api: str, headers: dict[bytes, bytes]
    ) -> JSONResponse | None:
        applied = {}
        prefer = headers.get(b"prefer")
        if prefer is not None:
            if len(prefer) > 1024:  # the application's bound on the header
                return None
            wait = min(preferred_wait(prefer.decode("latin-1")) or 0, self.status_wait)
            if wait > 0:
                if not job.done:
                    job = await self.service.wait(job, wait)
                    if job.process_id == WORKFLOW:
                        return None
                applied["Preference-Applied"] = f"wait={wait:g}"
        return JSONResponse(status_info(job, api), headers=applied)


def _headers(scope: Scope) -> dict[bytes, bytes] | None:
    """The request's headers by name; None when one the application acts on is there, or
    a name comes twice (the application decides which counts)."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in _DEFER or name in found:
            return None
        found[name] = value
    return found


def _json_asked(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    """JSON as the application would choose it: ``f=json`` or no ``f`` and an Accept that
    does not name text/html; any other query parameter is the application's."""
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    if query and query != [("f", "json")]:
        return False
    if query:
        return True
    return b"text/html" not in headers.get(b"accept", b"")
