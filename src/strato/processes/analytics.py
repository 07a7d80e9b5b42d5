"""strato.data's groupby diagnostics run by the climatology process: the
:class:`strato.analytics.Analytics` this capability offers through the Context.

Each is a job of the requesting user, kept like any other (listed, its result served, dismissed
by its owner): the data service caches the answer, so one request in many makes a job."""

from __future__ import annotations

import asyncio
import re

import xarray as xr

from strato import errors
from strato.data.analysis.diagnostics import ACTIONS
from strato.data.datasets.hdf5 import HDF5_LOCK
from strato.job_engine import JobEngine, JobStatus
from strato.processes.builtin.descriptions import BUILTIN
from strato.processes.builtin.tasks import GROUPINGS

_REASON = re.compile(r"(?P<kind>[A-Za-z_]\w*): (?P<detail>.*)", re.S)


class ClimatologyAnalytics:
    def __init__(self, jobs: JobEngine, time_limit: float | None = None) -> None:
        self.jobs = jobs
        self.time_limit = time_limit
        self.task = BUILTIN["climatology"][0]

    def groupby(
        self, dataset_id: str, variable: str, grouping: str, action: str, *, owner: str
    ) -> xr.Dataset | None:
        if grouping not in GROUPINGS or action not in ACTIONS:
            return None
        job = self.jobs.submit(
            task=self.task,
            inputs={"dataset": dataset_id, "variable": variable, "by": grouping, "method": action},
            owner=owner,
            process_id="climatology",
            time_limit=self.time_limit,
        )
        # Called from a worker thread of the web server: a loop of its own to wait on.
        done = asyncio.run(self.jobs.wait(job.id))
        if done.status is not JobStatus.successful:
            raise _error_of(done.error or f"the climatology job was {done.status.value}")
        href = (done.results or {})["result"]["href"]
        path = self.jobs.result_root / done.id / href
        with HDF5_LOCK, xr.open_dataset(path, engine="netcdf4") as ds:
            return ds.load()


def _error_of(reason: str) -> errors.StratoError:
    """The StratoError a task's one-line reason ("PayloadTooLarge: ...") names."""
    found = _REASON.fullmatch(reason)
    if found is not None:
        kind = getattr(errors, found["kind"], None)
        if isinstance(kind, type) and issubclass(kind, errors.StratoError):
            try:
                return kind(found["detail"])
            except TypeError:  # one that needs more than its detail
                pass
    return errors.StratoError(reason)
