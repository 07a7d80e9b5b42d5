"""The client of the ZeroMQ transport: a DEALER with its own CURVE key pair, blocking
(it runs in a job's task or a web request's thread).

A request waits for its reply; status events pushed meanwhile are handed to the
caller. A server that refuses this client's key is heard as a failed handshake on the
socket's monitor and said at once, rather than waited for.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strato import jsonio
from strato.errors import (
    BadGateway,
    GatewayTimeout,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    StratoError,
)
from strato.extras import optional_driver
from strato.processes.model.errors import (
    NoSuchJob,
    NoSuchProcess,
    ProcessFailed,
    RemoteUnreachable,
    ResultNotReady,
)
from strato.processes.zeromq.keys import load_pair, load_public
from strato.processes.zeromq.protocol import MAX_MESSAGE_BYTES, encode

if TYPE_CHECKING:
    import zmq

Event = Callable[[dict[str, Any]], None]


# A server that does not take this client is a gateway's failure to its user (502): the
# node's key or the server's allow-list is wrong, not the user's request.
class Refused(BadGateway):
    code = "zmq-refused"
    title = "Refused by the ZeroMQ server"


class Reply:
    def __init__(self, body: dict[str, Any], blobs: list[bytes]) -> None:
        self.body = body
        self.blobs = blobs


class EndpointClient:
    def __init__(
        self, address: str, *, server_key: Path, client_key: Path, timeout: float = 30.0
    ) -> None:
        with optional_driver():
            import zmq

        self.address = address
        self.timeout = timeout
        self._ids = itertools.count(1)
        # Whether a CURVE handshake ever succeeded: a request that timed out before one
        # reached no server (nothing started there; trying again is safe).
        self.connected = False
        self._context = zmq.Context()
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES * 64)  # inline NetCDF results
        public, secret = load_pair(client_key)
        sock.curve_publickey = public
        sock.curve_secretkey = secret
        sock.curve_serverkey = load_public(server_key)
        self._monitor = sock.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_FAILED_AUTH
            | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
            | zmq.EVENT_HANDSHAKE_SUCCEEDED
        )
        sock.connect(address)
        self._sock: zmq.Socket[bytes] = sock

    def request(self, op: str, on_event: Event | None = None, **fields: Any) -> Reply:
        """Send one request and wait for its reply; a refusal raises as the server's
        error class (404s and 413 as such, other 4xx as InvalidInput, a failed job's
        crash as ProcessFailed, a server's own failure as BadGateway). No answer in time:
        RemoteUnreachable when no connection was ever made, else GatewayTimeout."""
        import zmq

        rid = next(self._ids)
        self._sock.send(encode({"op": op, "rid": rid, **fields}))
        deadline = time.monotonic() + self.timeout
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        poller.register(self._monitor, zmq.POLLIN)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                if not self.connected:
                    raise RemoteUnreachable(
                        f"zmq endpoint {self.address}: no connection in {self.timeout:g} s"
                    )
                raise GatewayTimeout(
                    f"zmq endpoint {self.address}: no answer in {self.timeout:g} s"
                )
            ready = dict(poller.poll(int(min(left, 1.0) * 1000)))
            if self._monitor in ready:
                self._check_monitor()
            if self._sock not in ready:
                continue
            frames = self._sock.recv_multipart()
            body = jsonio.loads(frames[0])
            if "event" in body:
                if on_event is not None:
                    on_event(body)
                continue
            if body.get("rid") != rid:  # the late reply of a request given up on
                continue
            if not body.get("ok"):
                raise _error(self.address, body.get("error") or {})
            return Reply(body, frames[1:])

    def events(self, wait: float) -> list[dict[str, Any]]:
        """Events pushed within ``wait`` seconds (none if none came)."""
        import zmq

        found: list[dict[str, Any]] = []
        if self._monitor.poll(0, zmq.POLLIN):
            self._check_monitor()
        if not self._sock.poll(int(wait * 1000), zmq.POLLIN):
            return found
        while self._sock.poll(0, zmq.POLLIN):
            body = jsonio.loads(self._sock.recv_multipart()[0])
            if "event" in body:
                found.append(body)
        return found

    def _check_monitor(self) -> None:
        import zmq
        from zmq.utils.monitor import recv_monitor_message

        while self._monitor.poll(0, zmq.POLLIN):
            event = recv_monitor_message(self._monitor)
            if event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.connected = True
            elif event["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                raise Refused(
                    f"zmq endpoint {self.address} refused this node's CURVE key "
                    "(not in its allowed keys)"
                )
            elif event["event"] == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
                raise Refused(f"zmq endpoint {self.address}: the CURVE handshake failed")

    def close(self) -> None:
        self._sock.disable_monitor()
        self._monitor.close(0)
        self._sock.close(0)
        self._context.term()

    def __enter__(self) -> EndpointClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _error(address: str, error: dict[str, Any]) -> StratoError:
    """The server's refusal as its class. Its detail is the server's own words (the
    caller says which endpoint it asked)."""
    status = error.get("status")
    detail = str(error.get("detail") or "refused")[:2000]
    code = error.get("code")
    if code == "no-such-process":
        return NoSuchProcess(detail)
    if code == "no-such-job":
        return NoSuchJob(detail)
    if code == "result-not-ready":
        return ResultNotReady(detail)
    if code == "process-failed":
        return ProcessFailed(detail)
    if status == 404:
        return NotFound(detail)
    if status == 413:
        return PayloadTooLarge(detail)
    if isinstance(status, int) and 400 <= status < 500:
        return InvalidInput(detail)
    return BadGateway(f"zmq endpoint {address} failed: {detail}")
