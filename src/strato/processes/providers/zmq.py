"""A ZeroMQ endpoint (``strato endpoint serve --zmq``) as a provider.

A run: ``execute`` with ``subscribe`` (the reply is the acknowledgement: the job exists
there), status events followed to the end, the results fetched with NetCDF files inline
and written to this job's result directory (served from here as any local result),
then ``release`` (the remote keeps them until then: a lost connection loses nothing).
While no event comes the status is asked now and then, which also subscribes again
after a reconnection.

The endpoint's refusals keep their meaning here, as the OGC provider's do: inputs it
refuses 400, a process it lacks 404, a job of it that failed on its inputs a failed job
here with its reason; an endpoint that cannot be reached or does not answer a gateway
error (502, 504).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

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
from strato.processes.model.errors import (
    NoSuchJob,
    NoSuchProcess,
    ProcessFailed,
    RemoteUnreachable,
    ResultNotReady,
    remote_reason,
)
from strato.processes.providers.base import RemoteFailed, description_from_json
from strato.processes.settings import ProviderSettings
from strato.processes.zeromq.client import EndpointClient, Refused

log = logging.getLogger(__name__)

# Seconds without an event before the status is asked again.
QUIET = 5.0
_RUNNING = ("accepted", "running")


class ZmqProvider:
    def __init__(self, settings: ProviderSettings) -> None:
        if not (settings.address and settings.server_key and settings.client_key):
            raise StratoError(
                f"provider {settings.prefix!r}: kind zmq needs address, server_key and client_key"
            )
        self.settings = settings
        self.address = settings.address
        self.server_key: Path = settings.server_key
        self.client_key: Path = settings.client_key

    def _client(self) -> EndpointClient:
        return EndpointClient(
            self.address,
            server_key=self.server_key,
            client_key=self.client_key,
            timeout=self.settings.timeout,
        )

    @contextmanager
    def _remote(self, *, start: bool = False) -> Iterator[None]:
        """The endpoint's errors as this node says them: the user's (refused inputs, a
        missing process) with the endpoint's reason, the endpoint's own as gateway errors
        naming the provider (its address goes to the log). ``start``: the request that
        starts a job there, tried again by the job engine when it reached nothing."""
        said = f"provider {self.settings.prefix!r}"
        try:
            yield
        except (NoSuchJob, ResultNotReady) as exc:  # a job of this node's it lost
            raise BadGateway(f"{said} lost its job: {exc.detail}") from None
        except NoSuchProcess as exc:
            raise NoSuchProcess(f"{said}: {exc.detail}") from None
        except NotFound as exc:
            raise NotFound(f"{said}: {remote_reason(exc.detail)}") from None
        except PayloadTooLarge as exc:
            raise PayloadTooLarge(f"{said}: {remote_reason(exc.detail)}") from None
        except InvalidInput as exc:
            raise InvalidInput(f"{said} refused the inputs: {remote_reason(exc.detail)}") from None
        except ProcessFailed as exc:
            raise RemoteFailed(f"{said}: {remote_reason(exc.detail)}") from None
        except Refused as exc:
            log.warning("%s: %s", said, exc.detail)
            raise BadGateway(f"{said} refused this node's key") from None
        except RemoteUnreachable as exc:
            log.warning("%s: %s", said, exc.detail)
            unreachable = RemoteUnreachable if start else BadGateway
            raise unreachable(f"{said} cannot be reached") from None
        except GatewayTimeout as exc:
            log.warning("%s: %s", said, exc.detail)
            raise GatewayTimeout(f"{said} did not answer in {self.settings.timeout:g} s") from None
        except BadGateway as exc:
            log.warning("%s: %s", said, exc.detail)
            raise BadGateway(f"{said} failed to answer") from None
        except (KeyError, TypeError, ValueError) as exc:  # a reply that is not one
            log.warning("%s: a reply without what it should have: %r", said, exc)
            raise BadGateway(f"{said} answered something other than the protocol") from None

    def processes(self) -> list[ProcessDescription]:
        with self._remote(), self._client() as client:
            docs = client.request("processes").body.get("processes", [])
        found = []
        for doc in docs if isinstance(docs, list) else []:
            try:
                found.append(description_from_json(doc))
            except StratoError as exc:
                log.warning("provider %r: a process left out: %s", self.settings.prefix, exc)
        return found

    def describe(self, process_id: str) -> ProcessDescription:
        with self._remote(), self._client() as client:
            doc = client.request("describe", process=process_id).body["process"]
        return description_from_json(doc)

    def run(self, process_id: str, inputs: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
        with self._client() as client:
            with self._remote(start=True):
                ack = client.request("execute", process=process_id, inputs=inputs, subscribe=True)
            with self._remote():
                job_id = str(ack.body["job"]["id"])
                status = self._follow(client, job_id, dict(ack.body["job"]), ctx)
                if status["status"] != "successful":
                    self._failed(client, process_id, job_id, status)
                return self._results(client, process_id, job_id, ctx)

    def _failed(
        self, client: EndpointClient, process_id: str, job_id: str, status: dict[str, Any]
    ) -> None:
        """Raise why the job failed there: its results are the endpoint's problem saying
        whose fault it was (400 for inputs it refused), as a failed job's results are
        here. The job is released either way."""
        try:
            if status["status"] == "failed":
                client.request("results", job=job_id)
            raise RemoteFailed(
                f"{process_id!r} at provider {self.settings.prefix!r}: {status['status']}: "
                f"{status.get('error') or status.get('message') or 'no reason given'}"
            )
        finally:
            with suppress(StratoError):
                client.request("release", job=job_id)

    def _results(
        self, client: EndpointClient, process_id: str, job_id: str, ctx: TaskContext
    ) -> dict[str, Any]:
        answer = client.request("results", job=job_id, inline=True)
        results = dict(answer.body["results"])
        files = answer.body.get("files", [])
        if len(files) != len(answer.blobs):
            raise BadGateway(
                f"{process_id!r} at provider {self.settings.prefix!r}: results cut short"
            )
        for (name, filename, media), blob in zip(files, answer.blobs, strict=True):
            (ctx.result_dir / Path(filename).name).write_bytes(blob)
            results[name] = {"href": Path(filename).name, "type": media}
        client.request("release", job=job_id)
        return results

    def _follow(
        self, client: EndpointClient, job_id: str, status: dict[str, Any], ctx: TaskContext
    ) -> dict[str, Any]:
        last = (-1, "")
        quiet = 0.0
        while status["status"] in _RUNNING:
            if ctx.cancelled():
                client.request("cancel", job=job_id)
                client.request("release", job=job_id)
                raise RemoteFailed("cancelled")
            now = (int(status.get("progress") or 0), str(status.get("message") or ""))
            if now != last:
                ctx.progress(*now)
                last = now
            events = client.events(0.2)
            for event in events:
                if event.get("job", {}).get("id") == job_id:
                    status = dict(event["job"])
            quiet = 0.0 if events else quiet + 0.2
            if quiet >= QUIET:
                status = dict(client.request("subscribe", job=job_id).body["job"])
                quiet = 0.0
        return status

    def close(self) -> None:
        pass
