"""The streaming client (SciStream's S2UC and appctrl) as a Python API: requests to a
gateway's control server, the application's hello, updates, release, each side of a
stream on its own (:func:`inbound_request`, :func:`outbound_request`, :func:`complete`)
and ``connect``, which sets up both gateways of a stream at once. The command line
(:mod:`strato.stream.client_cli`) is a thin layer over this."""

from __future__ import annotations

import asyncio
import contextlib
import uuid as uuidlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import grpc

from strato.stream.control.server import LEG, LEG_CERT, PEER_CERT
from strato.stream.model import validate
from strato.stream.model.errors import StreamError
from strato.stream.proto import scistream_pb2 as pb
from strato.stream.proto import scistream_pb2_grpc as pb_grpc
from strato.stream.proto import sessions_pb2 as spb
from strato.stream.proto import sessions_pb2_grpc as spb_grpc

T = TypeVar("T")
Progress = Callable[[str], None]
# req and hello wait for each other on the server, up to its hello_deadline: the server
# ends them, so they have no client deadline. Every other call answers at once.
CALL_TIMEOUT = 60.0


class StreamClientError(Exception):
    """A control server refused or could not be reached; the message (one line) names the
    gateway, the call and what went wrong."""


@dataclass(frozen=True)
class Gateway:
    """A gateway's control server: ``host:port``, and either the certificate it serves
    (pinned as the only trust root, as SciStream's client does) or ``insecure``."""

    address: str
    server_cert: Path | None = None
    insecure: bool = False


@dataclass(frozen=True)
class Requested:
    """A req's answer: the session's listeners on the gateway, what the hello sent, and
    the gateway's leg ("tls" with its session certificate, or "plain")."""

    listeners: list[str]
    prod_listeners: list[str]
    leg: str
    leg_cert: bytes


@dataclass(frozen=True)
class Half:
    """One gateway's side of a stream (:func:`inbound_request`, :func:`outbound_request`).
    ``targets`` is where its listeners forward; empty while a TLS leg waits for the peer
    gateway's session certificate (:func:`complete`)."""

    uid: str
    listeners: list[str]
    prod_listeners: list[str]
    targets: list[str]
    leg: str
    leg_cert: bytes


@dataclass(frozen=True)
class Connection:
    uid: str
    listeners: list[str]  # on the consumer's gateway: where the consumer connects
    producer_listeners: list[str]  # on the producer's gateway (the WAN side)
    leg: str


def check_address(address: str, what: str = "control server") -> str:
    """``host:port`` as SciStream writes it; StreamClientError naming it otherwise."""
    try:
        validate.address(address, field=what)
    except StreamError as exc:
        raise StreamClientError(exc.message) from None
    return address


def read_certificate(path: Path, what: str) -> bytes:
    """A PEM certificate file's bytes, or StreamClientError saying why not."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise StreamClientError(f"{what} {path}: {e.strerror or e}") from None
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise StreamClientError(f"{what} {path}: not a PEM certificate")
    return data


class Control:
    """One control server, one channel; ``async with Control(gw, token) as c``."""

    def __init__(self, gateway: Gateway, token: str) -> None:
        self.gateway = gateway
        if not token.strip():
            raise StreamClientError(
                "no token: give --token or set STRATO_TOKEN (a strato API token with scope "
                "stream: strato token create --scope stream)"
            )
        check_address(gateway.address)
        # SciStream's client sends the token bare; the server takes it with Bearer too.
        self._md: tuple[tuple[str, str | bytes], ...] = (("authorization", token.strip()),)
        if gateway.insecure:
            self.channel = grpc.aio.insecure_channel(gateway.address)
        elif gateway.server_cert is not None:
            root = read_certificate(gateway.server_cert, "--server_cert")
            creds = grpc.ssl_channel_credentials(root_certificates=root)
            self.channel = grpc.aio.secure_channel(gateway.address, creds)
        else:
            raise StreamClientError(
                f"{gateway.address}: give the gateway's certificate (--server_cert) or "
                "--insecure for a control server without TLS"
            )
        self.stub = pb_grpc.ControlStub(self.channel)
        self.sessions_stub = spb_grpc.SessionsStub(self.channel)

    async def __aenter__(self) -> Control:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.channel.close(None)

    def _error(self, what: str, exc: grpc.aio.AioRpcError) -> StreamClientError:
        where = f"{what} on {self.gateway.address}"
        details = " ".join((exc.details() or "").split())
        if exc.code() is grpc.StatusCode.UNAVAILABLE:
            said = _unreachable(self.gateway, details)
            if said:
                return StreamClientError(f"{where}: {said}")
        return StreamClientError(f"{where}: {exc.code().name}: {details}")

    async def _call(self, what: str, call: Any) -> Any:
        try:
            return await call
        except grpc.aio.AioRpcError as exc:
            raise self._error(what, exc) from None

    async def req(self, uid: str, role: str, num_conn: int, rate: int) -> Requested:
        call = self.stub.req(
            pb.Request(uid=uid, role=role, num_conn=num_conn, rate=rate), metadata=self._md
        )
        resp = await self._call("req", call)
        trailing = dict(await call.trailing_metadata() or ())
        cert = trailing.get(LEG_CERT, b"")
        leg = trailing.get(LEG, "plain")  # SciStream's own server says nothing: plaintext
        return Requested(
            list(resp.listeners),
            list(resp.prod_listeners),
            leg if isinstance(leg, str) else leg.decode(),
            cert if isinstance(cert, bytes) else cert.encode(),
        )

    async def hello(self, uid: str, role: str, prod_listeners: list[str]) -> pb.AppResponse:
        msg = pb.Hello(uid=uid, role=role, prod_listeners=prod_listeners)
        reply: pb.AppResponse = await self._call("hello", self.stub.hello(msg, metadata=self._md))
        return reply

    async def update(
        self, uid: str, remote_listeners: list[str], peer_cert: bytes = b""
    ) -> pb.Response:
        md = self._md + (((PEER_CERT, peer_cert),) if peer_cert else ())
        msg = pb.UpdateTargets(uid=uid, remote_listeners=remote_listeners)
        call = self.stub.update(msg, metadata=md, timeout=CALL_TIMEOUT)
        reply: pb.Response = await self._call("update", call)
        return reply

    async def release(self, uid: str) -> None:
        call = self.stub.release(pb.Release(uid=uid), metadata=self._md, timeout=CALL_TIMEOUT)
        await self._call("release", call)

    async def sessions(self) -> list[spb.Session]:
        reply = await self._call(
            "ListSessions",
            self.sessions_stub.ListSessions(
                spb.ListSessionsRequest(), metadata=self._md, timeout=CALL_TIMEOUT
            ),
        )
        return list(reply.sessions)

    async def session(self, uid: str) -> spb.Session:
        """The caller's session ``uid`` as the gateway sees it; StreamClientError when this
        gateway has no such session of the caller's."""
        for s in await self.sessions():
            if s.uid == uid:
                return s
        raise StreamClientError(f"no session {uid} of yours on {self.gateway.address}")

    async def check(self, uid: str) -> spb.Session:
        """The session as the gateway sees it; StreamClientError when it is gone or has
        failed (its forwarder died)."""
        s = await self.session(uid)
        if s.state == "failed":
            raise StreamClientError(
                f"session {uid} on {self.gateway.address} has failed: its data "
                "server stopped forwarding; release it and connect again"
            )
        return s


def _unreachable(gateway: Gateway, details: str) -> str:
    """What a failure to reach a control server means, said for a user ('' if unclear)."""
    host = gateway.address.rpartition(":")[0]
    if "Connection refused" in details:
        return "nothing listens there (connection refused): is its control server running?"
    if "errors resolving" in details or "Domain name not found" in details:
        return f"the host {host!r} is not known (name lookup failed)"
    if "CERTIFICATE_VERIFY_FAILED" in details:
        return (
            "the control server's TLS certificate is not the one given "
            f"(--server_cert {gateway.server_cert}): pin the certificate it serves"
        )
    if "Hostname Verification" in details:
        return (
            f"the control server's certificate does not name {host!r}: dial it by an "
            "address its certificate has (strato stream cert ADDRESS makes one)"
        )
    if gateway.insecure and "Socket closed" in details:
        return (
            "the control server closed the connection: it serves TLS; give its certificate "
            "(--server_cert) instead of --insecure"
        )
    if not gateway.insecure and ("handshake" in details.lower() or "SSL" in details):
        return (
            "the TLS handshake failed: does the control server serve TLS? "
            "(--insecure for one without)"
        )
    return ""


def new_uid() -> str:
    return str(uuidlib.uuid4())


async def _all(*coros: Awaitable[Any]) -> list[Any]:
    """Run the calls at once; the first failure cancels the others (a TaskGroup) and is
    raised as itself, not wrapped in an exception group."""
    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(_awaited(c)) for c in coros]
    except BaseExceptionGroup as group:
        raise _first(group) from None
    return [t.result() for t in tasks]


async def _awaited(aw: Awaitable[T]) -> T:
    return await aw


def _first(exc: BaseException) -> BaseException:
    """The error to show from a group: a StreamClientError if any, else the first."""
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    leaves = [_first(e) for e in exc.exceptions]
    return next((e for e in leaves if isinstance(e, StreamClientError)), leaves[0])


async def connect(
    producer: Gateway,
    consumer: Gateway,
    targets: list[str],
    token: str,
    num_conn: int = 1,
    rate: int = 10000,
    uid: str | None = None,
) -> Connection:
    """Both sides of a stream: the reqs to both gateways with their hellos (this client
    plays both application controllers), then both updates at once: the producer's
    gateway forwards to ``targets``, the consumer's to the producer gateway's listeners,
    each pinning the other's session certificate when the legs are TLS. On any failure
    both sessions are released."""
    uid = uid or new_uid()
    async with Control(producer, token) as p, Control(consumer, token) as c:
        try:
            prod, cons, _, _ = await _all(
                p.req(uid, "PROD", num_conn, rate),
                c.req(uid, "CONS", num_conn, rate),
                p.hello(uid, "PROD", targets),
                c.hello(uid, "PROD", []),  # SciStream's consumer hello says PROD too
            )
            if prod.leg != cons.leg:
                raise StreamClientError(
                    f"the producer's gateway has {prod.leg} legs, the consumer's "
                    f"{cons.leg}: configure both gateways alike (stream.leg_tls)"
                )
            await _all(
                p.update(uid, prod.prod_listeners, cons.leg_cert),
                c.update(uid, prod.listeners, prod.leg_cert),
            )
        except BaseException:
            await _release_quietly(uid, p, c)
            raise
    return Connection(uid, cons.listeners, prod.listeners, prod.leg)


async def _side(
    gateway: Gateway,
    token: str,
    role: str,
    uid: str,
    app_listeners: list[str],
    targets: list[str] | None,
    num_conn: int,
    rate: int,
    hello: bool,
    peer_leg_cert: bytes,
    progress: Progress,
) -> Half:
    async with Control(gateway, token) as c:
        progress("sending client request message")
        progress("started client request")
        req = asyncio.create_task(_awaited(c.req(uid, role, num_conn, rate)))
        try:
            progress("waiting for hello message")
            if hello:  # this client is the application controller too
                if role == "PROD":  # SciStream's inbound-request says it twice
                    progress("sending for hello message")
                    progress("sending for hello message")
                # SciStream's client says PROD in the consumer's hello as well.
                await c.hello(uid, "PROD", app_listeners)
                progress("Hello message sent successfully")
            got = await req
        except BaseException:
            req.cancel()  # the server releases a session whose req is given up
            with contextlib.suppress(BaseException):
                await req
            raise
        try:
            if got.leg == "tls" and not peer_leg_cert:
                if role == "PROD":  # forwards once the consumer's gateway is known
                    return Half(uid, got.listeners, got.prod_listeners, [], got.leg, got.leg_cert)
                raise StreamClientError(
                    f"the gateway {gateway.address} has TLS legs: give the producer gateway's "
                    "session certificate (--peer-leg-cert FILE, which inbound-request wrote)"
                )
            reply = await c.update(uid, targets or got.prod_listeners, peer_leg_cert)
        except BaseException:
            await _release_quietly(uid, c)
            raise
        return Half(
            uid,
            got.listeners,
            got.prod_listeners,
            list(reply.prod_listeners),
            got.leg,
            got.leg_cert,
        )


def _quiet(_: str) -> None:
    pass


async def inbound_request(
    gateway: Gateway,
    token: str,
    uid: str,
    app_listeners: list[str],
    num_conn: int = 5,
    rate: int = 10000,
    *,
    hello: bool = True,
    peer_leg_cert: bytes = b"",
    progress: Progress = _quiet,
) -> Half:
    """The producer's side (SciStream's inbound-request): a session on the producer's
    gateway forwarding to the application at ``app_listeners``. ``hello=False`` leaves the
    hello to the application controller (:meth:`Control.hello`). With TLS legs and no
    ``peer_leg_cert`` the session waits for :func:`complete`; its ``leg_cert`` goes to
    :func:`outbound_request`."""
    return await _side(
        gateway,
        token,
        "PROD",
        uid,
        app_listeners,
        None,
        num_conn,
        rate,
        hello,
        peer_leg_cert,
        progress,
    )


async def outbound_request(
    gateway: Gateway,
    token: str,
    uid: str,
    producer_listeners: list[str],
    app_listeners: list[str],
    num_conn: int = 5,
    rate: int = 10000,
    *,
    hello: bool = True,
    peer_leg_cert: bytes = b"",
    progress: Progress = _quiet,
) -> Half:
    """The consumer's side (SciStream's outbound-request): a session on the consumer's
    gateway forwarding to the producer gateway's listeners. With TLS legs,
    ``peer_leg_cert`` is the producer gateway's session certificate (its Half's
    ``leg_cert``)."""
    if not producer_listeners:
        raise StreamClientError("the producer gateway's listeners are needed (PROD_LISTENERS)")
    return await _side(
        gateway,
        token,
        "CONS",
        uid,
        app_listeners,
        producer_listeners,
        num_conn,
        rate,
        hello,
        peer_leg_cert,
        progress,
    )


async def complete(
    gateway: Gateway,
    token: str,
    uid: str,
    peer_leg_cert: bytes = b"",
    targets: list[str] | None = None,
) -> pb.Response:
    """An update of session ``uid``: to ``targets`` (default: the addresses its hello
    sent), pinning ``peer_leg_cert`` on a TLS leg. It finishes a producer's side whose
    TLS leg waited for the consumer gateway's session certificate, or moves a session to
    new targets."""
    async with Control(gateway, token) as c:
        if not targets:
            targets = list((await c.session(uid)).prod_listeners)
            if not targets:
                raise StreamClientError(
                    f"session {uid} on {gateway.address} has no application addresses from "
                    "its hello: give the targets (--remote_listeners)"
                )
        return await c.update(uid, targets, peer_leg_cert)


async def _release_quietly(uid: str, *controls: Control) -> None:
    for control in controls:
        with contextlib.suppress(StreamClientError, grpc.aio.AioRpcError):
            await asyncio.shield(control.release(uid))


async def release(uid: str, gateways: list[Gateway], token: str) -> None:
    for gateway in gateways:
        async with Control(gateway, token) as control:
            await control.release(uid)
