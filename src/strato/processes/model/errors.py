"""The exceptions OGC API - Processes names, as strato domain errors: their HTTP status
comes from the one table (strato.http.problems) through the class they extend, and their
problem type is the standard's URI."""

from __future__ import annotations

import re

from strato.errors import InvalidInput, NotFound, PayloadTooLarge, StratoError

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


# The client's errors a task may raise (its inputs name no variable there, a domain over
# the byte budget, a dataset not served): they keep their class across the worker
# boundary, so a failed job answers with their 4xx, not as a crash.
_CLIENT_ERRORS: dict[str, type[StratoError]] = {
    cls.__name__: cls for cls in (InvalidInput, NotFound, PayloadTooLarge)
}
# A job's reason as every executor writes it ("<exception class>: <detail>", see
# strato.jobs.model.jobs.reason_of), or a workflow's naming its failed step first. Only
# these names are read from it: nothing in a reason is ever evaluated.
_REASON = re.compile(
    r"(?:step '[^']*' \([^)]*\) failed: )?(?P<kind>"
    + "|".join(_CLIENT_ERRORS)
    + r"): (?P<detail>.+)",
    re.S,
)


def job_failure(job_id: str, reason: str | None) -> StratoError:
    """What a failed job's results (and a failed synchronous execution) answer: the task's
    own InvalidInput, NotFound or PayloadTooLarge (400, 404, 413, the reason as detail)
    when that is why it failed, else ProcessFailed (500)."""
    text = f"job {job_id!r} failed: {reason or 'no reason given'}"
    found = _REASON.fullmatch(reason or "")
    if found is not None:
        return _CLIENT_ERRORS[found["kind"]](text)
    return ProcessFailed(text)
