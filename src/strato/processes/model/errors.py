"""The exceptions OGC API - Processes names, as strato domain errors: their HTTP status
comes from the one table (strato.http.problems) through the class they extend, and their
problem type is the standard's URI."""

from __future__ import annotations

import re

from strato.errors import (
    BadGateway,
    GatewayTimeout,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    StratoError,
    Unavailable,
)
from strato.job_engine import RetryableTaskError

EXCEPTIONS = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"


class NoSuchProcess(NotFound):
    code = "no-such-process"
    title = "No such process"
    type_uri = EXCEPTIONS + "no-such-process"


class NoSuchJob(NotFound):
    code = "no-such-job"
    title = "No such job"
    type_uri = EXCEPTIONS + "no-such-job"


class ResultNotReady(NotFound):
    code = "result-not-ready"
    title = "Result not ready"
    type_uri = EXCEPTIONS + "result-not-ready"


class ProcessFailed(StratoError):
    """The job ran and crashed: its results are this error. Not a client's fault, so it
    stays out of the table's 4xx rows and answers 500 with the job's reason."""

    code = "process-failed"
    title = "The process failed"


class RemoteUnreachable(BadGateway, RetryableTaskError):
    """A process provider that could not be reached to start a job there: the job engine
    runs the job again while it has retries left (nothing started there yet), then the
    job fails with this, which answers 502. (One that took the request and did not answer
    in time is GatewayTimeout, not retried: the job may have started there.)"""


# The errors a task may raise that are not a crash: the client's (its inputs name no
# variable there, a domain over the byte budget, a dataset not served, a process a
# provider does not have: 400, 404, 413) and a provider's that cannot be reached or
# answers nonsense (502, 504). They keep their class across the worker boundary by name,
# so a failed job answers with their status, not as a crash.
CLIENT_ERRORS: dict[str, type[StratoError]] = {
    cls.__name__: cls for cls in (InvalidInput, NotFound, NoSuchProcess, PayloadTooLarge)
}
_KNOWN_ERRORS: dict[str, type[StratoError]] = {
    **CLIENT_ERRORS,
    **{cls.__name__: cls for cls in (BadGateway, GatewayTimeout, RemoteUnreachable)},
    # What the task met was down or broken (the database, a served dataset's files): 503,
    # as the data service answers for them, not a crash of the process.
    "Unavailable": Unavailable,
    "DatasetBroken": Unavailable,
}
# A job's reason as every executor writes it ("<exception class>: <detail>", see
# strato.jobs.model.jobs.reason_of), or a workflow's naming its failed (or refused) step
# first (strato.processes.workflows.coordinator). Only these names are read from it:
# nothing in a reason is ever evaluated.
_REASON = re.compile(
    r"(?:step '[^']*' \([^)]*\) (?:failed|was refused): )?(?P<kind>"
    + "|".join(_KNOWN_ERRORS)
    + r"): (?P<detail>.+)",
    re.S,
)
# How job_failure words a failed job's problem: what a remote strato node answers when
# its job failed, the remote job's id and the class before its reason.
_REMOTE_FAILURE = re.compile(
    r"job '[^']*' failed: (?:step '[^']*' \([^)]*\) (?:failed|was refused): )?(?:"
    + "|".join(_KNOWN_ERRORS)
    + r"): (?P<detail>.+)",
    re.S,
)


def job_failure(job_id: str, reason: str | None) -> StratoError:
    """What a failed job's results (and a failed synchronous execution) answer: the
    task's own client error, gateway error or unavailability (400, 404, 413, 502, 503,
    504, the reason as detail) when that is why it failed, else ProcessFailed (500)."""
    text = f"job {job_id!r} failed: {reason or 'no reason given'}"
    found = _REASON.fullmatch(reason or "")
    if found is not None:
        return _KNOWN_ERRORS[found["kind"]](text)
    return ProcessFailed(text)


def remote_reason(detail: str) -> str:
    """The reason in a remote node's problem about its failed job, without the remote
    job's id and error class when it words it as job_failure does (another strato node):
    the user hears the reason, not the remote's bookkeeping."""
    found = _REMOTE_FAILURE.fullmatch(detail)
    return found["detail"] if found is not None else detail
