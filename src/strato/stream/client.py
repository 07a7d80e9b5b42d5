"""The streaming client (SciStream's S2UC and appctrl) as a Python API: requests to a
gateway's control server, the application's hello, updates, release, and ``connect``,
which sets up both gateways of a stream at once. The command line
(:mod:`strato.stream.client_cli`) is a thin layer over this."""

from __future__ import annotations

import asyncio
import contextlib
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc

from strato.stream.control.server import LEG, LEG_CERT, PEER_CERT
from strato.stream.proto import scistream_pb2 as pb
from strato.stream.proto import scistream_pb2_grpc as pb_grpc
from strato.stream.proto import sessions_pb2 as spb
from strato.stream.proto import sessions_pb2_grpc as spb_grpc


class StreamClientError(Exception):
    """A control server refused or could not be reached; the message names the gateway,
    the gRPC status and what the server said."""


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
class Connection:
    uid: str
    listeners: list[str]  # on the consumer's gateway: where the consumer connects
    producer_listeners: list[str]  # on the producer's gateway (the WAN side)
    leg: str


class Control:
    """One control server, one channel; ``async with Control(gw, token) as c``."""

    def __init__(self, gateway: Gateway, token: str) -> None:
        self.gateway = gateway
        # SciStream's client sends the token bare; the server takes it with Bearer too.
        self._md: tuple[tuple[str, str | bytes], ...] = (("authorization", token),)
        if gateway.server_cert is not None:
            try:
                root = gateway.server_cert.read_bytes()
            except OSError as e:
                raise StreamClientError(f"--server_cert {gateway.server_cert}: {e}") from None
            creds = grpc.ssl_channel_credentials(root_certificates=root)
            self.channel = grpc.aio.secure_channel(gateway.address, creds)
        elif gateway.insecure:
            self.channel = grpc.aio.insecure_channel(gateway.address)
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
        return StreamClientError(
            f"{what} on {self.gateway.address}: {exc.code().name}: {exc.details()}"
        )

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
        reply: pb.Response = await self._call("update", self.stub.update(msg, metadata=md))
        return reply

    async def release(self, uid: str) -> None:
        await self._call("release", self.stub.release(pb.Release(uid=uid), metadata=self._md))

    async def sessions(self) -> list[spb.Session]:
        reply = await self._call(
            "ListSessions",
            self.sessions_stub.ListSessions(spb.ListSessionsRequest(), metadata=self._md),
        )
        return list(reply.sessions)

    async def check(self, uid: str) -> spb.Session:
        """The session as the gateway sees it; StreamClientError when it is gone or has
        failed (its forwarder died)."""
        for s in await self.sessions():
            if s.uid == uid:
                if s.state == "failed":
                    raise StreamClientError(
                        f"session {uid} on {self.gateway.address} has failed: its data "
                        "server stopped forwarding; release it and connect again"
                    )
                return s
        raise StreamClientError(f"no session {uid} on {self.gateway.address}")


def new_uid() -> str:
    return str(uuidlib.uuid4())


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
            prod, cons, _, _ = await asyncio.gather(
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
            await asyncio.gather(
                p.update(uid, prod.prod_listeners, cons.leg_cert),
                c.update(uid, prod.listeners, prod.leg_cert),
            )
        except BaseException:
            await _release_quietly(uid, p, c)
            raise
    return Connection(uid, cons.listeners, prod.listeners, prod.leg)


async def _release_quietly(uid: str, *controls: Control) -> None:
    for control in controls:
        with contextlib.suppress(StreamClientError, grpc.aio.AioRpcError):
            await asyncio.shield(control.release(uid))


async def release(uid: str, gateways: list[Gateway], token: str) -> None:
    for gateway in gateways:
        async with Control(gateway, token) as control:
            await control.release(uid)
