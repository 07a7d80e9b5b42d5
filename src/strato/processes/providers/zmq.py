"""A ZeroMQ endpoint (``strato endpoint serve --zmq``) as a provider.

A run: ``execute`` with ``subscribe`` (the reply is the acknowledgement: the job exists
there), status events followed to the end, the results fetched with NetCDF files inline
and written to this job's result directory (served from here as any local result),
then ``release`` (the remote keeps them until then: a lost connection loses nothing).
While no event comes the status is asked now and then, which also subscribes again
after a reconnection.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from strato.errors import StratoError
from strato.job_engine import RetryableTaskError, TaskContext
from strato.processes.model.description import ProcessDescription
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

    def processes(self) -> list[ProcessDescription]:
        with self._client() as client:
            docs = client.request("processes").body.get("processes", [])
        found = []
        for doc in docs:
            try:
                found.append(description_from_json(doc))
            except StratoError as exc:
                log.warning("provider %r: a process left out: %s", self.settings.prefix, exc)
        return found

    def describe(self, process_id: str) -> ProcessDescription:
        with self._client() as client:
            answer = client.request("describe", process=process_id)
        return description_from_json(answer.body["process"])

    def run(self, process_id: str, inputs: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
        with self._client() as client:
            try:
                ack = client.request("execute", process=process_id, inputs=inputs, subscribe=True)
            except Refused:
                raise
            except StratoError as exc:
                if exc.code == "unavailable":
                    raise RetryableTaskError(str(exc)) from None
                raise
            job_id = str(ack.body["job"]["id"])
            status = self._follow(client, job_id, dict(ack.body["job"]), ctx)
            if status["status"] != "successful":
                raise RemoteFailed(
                    f"{self.settings.prefix}{process_id}: {status['status']}: "
                    f"{status.get('error') or status.get('message') or 'no reason given'}"
                )
            answer = client.request("results", job=job_id, inline=True)
            results = dict(answer.body["results"])
            files = answer.body.get("files", [])
            if len(files) != len(answer.blobs):
                raise RemoteFailed(f"{self.settings.prefix}{process_id}: results cut short")
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
