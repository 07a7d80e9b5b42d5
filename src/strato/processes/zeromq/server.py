"""A node's processes over ZeroMQ: a ROUTER socket, CURVE server with a ZAP allow-list of
client keys, each request answered on the same connection (an acknowledgement with the
job id for an execution), status pushed to subscribers, results kept until released.

Jobs run on the node's job engine through its :class:`ProcessService`, each owned by
the client key that asked (``zmq:<public key>``): a client sees only its own jobs. A
malformed request gets an error reply and the server goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi.concurrency import run_in_threadpool

from strato.auth import Principal, Scope
from strato.errors import StratoError
from strato.extras import optional_driver
from strato.job_engine import JobStatus
from strato.processes.model.errors import NoSuchProcess
from strato.processes.zeromq.keys import AllowList, load_pair
from strato.processes.zeromq.protocol import (
    MAX_MESSAGE_BYTES,
    BadRequest,
    decode,
    encode,
    job_status,
    text,
)

if TYPE_CHECKING:
    import zmq.asyncio

    from strato.processes.service import ProcessService

log = logging.getLogger(__name__)

# Progress pushed to a subscriber at most this often; the end is pushed at once.
PROGRESS_EVERY = 0.5
# Most NetCDF bytes sent inline for one job's results; larger stay references.
MAX_INLINE = 512 << 20
_SCOPES = frozenset({Scope.READ, Scope.PROCESS})


class EndpointServer:
    def __init__(
        self,
        service: ProcessService,
        address: str,
        *,
        server_key: Path,
        allowed: Path,
        result_root: Path,
        processes: Collection[str] = (),
    ) -> None:
        self.service = service
        self.address = address
        self.public, self.secret = load_pair(server_key)
        self.allow = AllowList(allowed)
        self.result_root = result_root
        self.exposed = frozenset(processes)
        self.bound = ""
        self._watchers: set[asyncio.Task[None]] = set()

    async def serve(self, started: asyncio.Event | None = None) -> None:
        with optional_driver():
            import zmq
            import zmq.asyncio
            from zmq.auth.asyncio import AsyncioAuthenticator

        context = zmq.asyncio.Context()
        auth = AsyncioAuthenticator(context, log=logging.getLogger("strato.zmq.auth"))
        auth.start()
        auth.configure_curve_callback(domain="*", credentials_provider=self.allow)
        sock = context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        sock.curve_server = True
        sock.curve_publickey = self.public
        sock.curve_secretkey = self.secret
        # A message to a peer that has gone is dropped, not an error that stops the loop.
        sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
        try:
            sock.bind(self.address)
            self.bound = sock.getsockopt_string(zmq.LAST_ENDPOINT)
            log.info("zmq: serving processes on %s", self.bound)
            if started is not None:
                started.set()
            while True:
                frames = await sock.recv_multipart(copy=False)
                peer = frames[0].bytes
                user = frames[-1].get("User-Id") if len(frames) > 1 else None
                user = user if isinstance(user, str) else None
                await self._handle(sock, peer, user, [f.bytes for f in frames[1:]])
        finally:
            for task in list(self._watchers):
                task.cancel()
            sock.close(0)
            auth.stop()
            context.term()

    async def _handle(
        self, sock: zmq.asyncio.Socket, peer: bytes, user: str | None, frames: list[bytes]
    ) -> None:
        rid: Any = None
        try:
            message = decode(frames)
            rid = message.get("rid")
            if not user:  # the ZAP handler let no one in without a key; a belt to it
                raise BadRequest("no client key")
            who = Principal(user=f"zmq:{user}", scopes=_SCOPES)
            reply, blobs = await self._answer(sock, peer, message, who)
        except BadRequest as exc:
            reply, blobs = _error(400, "bad-request", str(exc)), []
        except StratoError as exc:
            from strato.http.problems import status_of

            reply, blobs = _error(status_of(exc), exc.code, exc.detail), []
        except Exception as exc:  # the request fails, the server goes on
            log.exception("zmq: a request failed")
            reply, blobs = _error(500, "error", f"{type(exc).__name__}"), []
        await sock.send_multipart([peer, encode({"rid": rid, **reply}), *blobs])

    async def _answer(
        self, sock: zmq.asyncio.Socket, peer: bytes, message: dict[str, Any], who: Principal
    ) -> tuple[dict[str, Any], list[bytes]]:
        op = message["op"]
        service = self.service
        if op == "processes":
            found = await run_in_threadpool(service.registry.all)
            docs = [r.description.to_json() for r in found if self._offers(r.id)]
            return {"ok": True, "processes": docs}, []
        if op == "describe":
            process_id = self._offered(text(message, "process"))
            registered = await run_in_threadpool(service.process, process_id)
            return {"ok": True, "process": registered.description.to_json()}, []
        if op == "execute":
            process_id = self._offered(text(message, "process"))
            inputs = message.get("inputs", {})
            if not isinstance(inputs, dict):
                raise BadRequest("inputs is a JSON object")
            job = await run_in_threadpool(service.submit, process_id, inputs, who)
            if message.get("subscribe"):
                self._watch(sock, peer, job.id)
            return {"ok": True, "job": job_status(job)}, []
        job_id = text(message, "job")
        if op == "status":
            job = await run_in_threadpool(service.job, job_id, who)
            return {"ok": True, "job": job_status(job)}, []
        if op == "subscribe":
            job = await run_in_threadpool(service.job, job_id, who)
            self._watch(sock, peer, job.id)
            return {"ok": True, "job": job_status(job)}, []
        if op == "results":
            job = await run_in_threadpool(service.finished_results, job_id, who)
            inline = bool(message.get("inline"))
            return await run_in_threadpool(self._results, job.id, dict(job.results or {}), inline)
        if op == "cancel":
            await run_in_threadpool(service.job, job_id, who)
            job = await run_in_threadpool(service.jobs.cancel, job_id)
            return {"ok": True, "job": job_status(job)}, []
        if op == "release":
            job = await run_in_threadpool(service.dismiss, job_id, who)
            return {"ok": True, "job": job_status(job)}, []
        raise BadRequest(f"unknown op {op!r}")  # decode() lets only OPS through

    def _offers(self, process_id: str) -> bool:
        return not self.exposed or process_id in self.exposed

    def _offered(self, process_id: str) -> str:
        if not self._offers(process_id):
            raise NoSuchProcess(f"no process {process_id!r} is offered here")
        return process_id

    def _results(
        self, job_id: str, results: dict[str, Any], inline: bool
    ) -> tuple[dict[str, Any], list[bytes]]:
        """The results; with ``inline``, each NetCDF file the job wrote as a frame."""
        files: list[list[str]] = []
        blobs: list[bytes] = []
        budget = MAX_INLINE
        for name, value in results.items():
            path = self._file_of(job_id, value) if inline else None
            if path is None or path.stat().st_size > budget:
                continue
            blob = path.read_bytes()
            budget -= len(blob)
            files.append([name, path.name, str(value.get("type", "application/x-netcdf"))])
            blobs.append(blob)
        return {"ok": True, "results": results, "files": files}, blobs

    def _file_of(self, job_id: str, value: Any) -> Path | None:
        """The job's own NetCDF file an output references, if it is one."""
        if not isinstance(value, dict) or not isinstance(value.get("href"), str):
            return None
        href = value["href"]
        if "/" in href or "\\" in href or href.startswith(".") or not href.endswith(".nc"):
            return None
        path = self.result_root / job_id / href
        return path if path.is_file() else None

    def _watch(self, sock: zmq.asyncio.Socket, peer: bytes, job_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._push(sock, peer, job_id))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _push(self, sock: zmq.asyncio.Socket, peer: bytes, job_id: str) -> None:
        """Status events of ``job_id`` to ``peer`` until it ends: the end as soon as the
        engine says (pushed to the engine's waiters), progress at most every
        PROGRESS_EVERY seconds."""
        last: dict[str, Any] | None = None
        try:
            while True:
                job = await self.service.jobs.wait(job_id, timeout=PROGRESS_EVERY)
                status = job_status(job)
                if status != last:
                    await sock.send_multipart([peer, encode({"event": "status", "job": status})])
                    last = status
                if job.status not in (JobStatus.accepted, JobStatus.running):
                    return
        except StratoError:  # dismissed and removed meanwhile: nothing more to say
            return


def _error(status: int, code: str, detail: str) -> dict[str, Any]:
    return {"ok": False, "error": {"status": status, "code": code, "detail": detail}}
