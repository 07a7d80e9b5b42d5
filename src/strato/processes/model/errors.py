"""The exceptions OGC API - Processes names, as strato domain errors: their HTTP status
comes from the one table (strato.http.problems) through the class they extend, and their
problem type is the standard's URI."""

from __future__ import annotations

from strato.errors import NotFound, StratoError

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
    """The job ran and failed: its results are this error. Not a client's fault, so it
    stays out of the table's 4xx rows and answers 500 with the job's reason."""

    code = "process-failed"
    title = "The process failed"
