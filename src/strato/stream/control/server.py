"""The control server: SciStream's ``scistream.Control`` (req, hello, update, release) and
strato's read-only ``strato.stream.v1.Sessions`` on one grpc.aio server. Every call is
authenticated first; every domain error leaves as its gRPC status with the SciStream
error name in the details (strato.stream.control.errors)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from strato import __version__
from strato.stream.control import errors
from strato.stream.control.auth import Authenticator, token_from
from strato.stream.dataserver.base import DataServer, Warms
from strato.stream.model.errors import StreamError
from strato.stream.model.manager import Sessions
from strato.stream.model.ports import PortPool
from strato.stream.model.session import Session
from strato.stream.model.validate import format_address
from strato.stream.proto import scistream_pb2 as pb
from strato.stream.proto import scistream_pb2_grpc as pb_grpc
from strato.stream.proto import sessions_pb2 as spb
from strato.stream.proto import sessions_pb2_grpc as spb_grpc
from strato.stream.settings import StreamSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

# The gateway-to-gateway leg's keys travel in call metadata, so scistream.Control's
# messages stay SciStream's: the req's trailing metadata says whether this gateway's leg
# is TLS and carries its session certificate; an update's metadata carries the peer
# gateway's (binary "-bin" keys: PEM has line breaks). SciStream's client ignores both.
LEG = "strato-leg"  # "tls" or "plain"
LEG_CERT = "strato-leg-cert-bin"
PEER_CERT = "strato-peer-cert-bin"


def _metadata_value(context: grpc.aio.ServicerContext[Any, Any], key: str) -> bytes:
    for k, v in context.invocation_metadata() or ():
        if k == key:
            return v if isinstance(v, bytes) else v.encode()
    return b""


async def _call(
    context: grpc.aio.ServicerContext[Any, Any],
    authenticate: Authenticator,
    body: Callable[[str], Awaitable[T]],
) -> T:
    """Authenticate, run ``body(owner)``; a StreamError aborts the call with its status."""
    try:
        owner = await authenticate(token_from(context.invocation_metadata()))
        return await body(owner)
    except StreamError as exc:
        await context.abort(errors.code_of(exc), exc.message, trailing_metadata=errors.details(exc))
        raise AssertionError("abort returns by raising") from None
    except grpc.aio.AbortError:
        raise
    except Exception:
        # A fault of the server's own: logged with its traceback here; the caller gets
        # INTERNAL without it (paths and internals are not theirs to read).
        log.exception("control server call failed")
        await context.abort(grpc.StatusCode.INTERNAL, "internal error in the control server")
        raise AssertionError("abort returns by raising") from None


def _strs(session: Session, which: str) -> list[str]:
    return [format_address(a) for a in getattr(session, which)]


class Control(pb_grpc.ControlServicer):
    def __init__(self, sessions: Sessions, authenticate: Authenticator) -> None:
        self.sessions, self.authenticate = sessions, authenticate

    async def req(
        self, request: pb.Request, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Response:
        async def body(owner: str) -> pb.Response:
            s = await self.sessions.request(
                owner, request.uid, request.role, request.num_conn, request.rate
            )
            if s.leg_cert:
                context.set_trailing_metadata(((LEG, "tls"), (LEG_CERT, s.leg_cert)))
            else:
                context.set_trailing_metadata(((LEG, "plain"),))
            return pb.Response(
                listeners=_strs(s, "advertised"), prod_listeners=_strs(s, "prod_listeners")
            )

        return await _call(context, self.authenticate, body)

    async def hello(
        self, request: pb.Hello, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.AppResponse:
        async def body(owner: str) -> pb.AppResponse:
            s = await self.sessions.hello(
                owner, request.uid, request.role, list(request.prod_listeners)
            )
            # SciStream's words, by the hello's role; the listeners are sent to both.
            message = (
                "Sending Prod listeners..."
                if request.role.upper() == "PROD"
                else "Sending listeners..."
            )
            return pb.AppResponse(message=message, listeners=_strs(s, "advertised"))

        return await _call(context, self.authenticate, body)

    async def update(
        self, request: pb.UpdateTargets, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Response:
        async def body(owner: str) -> pb.Response:
            s = await self.sessions.update(
                owner,
                request.uid,
                list(request.remote_listeners),
                request.role,
                _metadata_value(context, PEER_CERT),
            )
            return pb.Response(listeners=_strs(s, "advertised"), prod_listeners=_strs(s, "targets"))

        return await _call(context, self.authenticate, body)

    async def release(
        self, request: pb.Release, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Response:
        async def body(owner: str) -> pb.Response:
            await self.sessions.release(owner, request.uid)
            return pb.Response()

        return await _call(context, self.authenticate, body)


class SessionsService(spb_grpc.SessionsServicer):
    def __init__(self, sessions: Sessions, authenticate: Authenticator, backend: str) -> None:
        self.sessions, self.authenticate, self.backend = sessions, authenticate, backend

    async def Status(
        self, request: spb.StatusRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> spb.StatusReply:
        async def body(owner: str) -> spb.StatusReply:
            pool = self.sessions.pool
            return spb.StatusReply(
                version=__version__,
                backend=self.backend,
                sessions=len(self.sessions),
                ports_total=pool.total,
                ports_free=pool.total - pool.reserved,
            )

        return await _call(context, self.authenticate, body)

    async def ListSessions(
        self, request: spb.ListSessionsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> spb.ListSessionsReply:
        async def body(owner: str) -> spb.ListSessionsReply:
            return spb.ListSessionsReply(
                sessions=[
                    spb.Session(
                        uid=s.uid,
                        owner=s.owner,
                        role=s.role,
                        num_conn=s.num_conn,
                        rate=s.rate,
                        state=s.state.value,
                        listeners=_strs(s, "advertised"),
                        prod_listeners=_strs(s, "prod_listeners"),
                        targets=_strs(s, "targets"),
                        created=s.created,
                        last_activity=s.last_activity,
                    )
                    for s in self.sessions.owned_by(owner)
                ]
            )

        return await _call(context, self.authenticate, body)

    async def Counters(
        self, request: spb.CountersRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> spb.CountersReply:
        async def body(owner: str) -> spb.CountersReply:
            found = await self.sessions.counters(owner, request.uid)
            return spb.CountersReply(
                counters=[
                    spb.ListenerCounters(
                        listener=format_address(a), connections=n, bytes_in=i, bytes_out=o
                    )
                    for a, n, i, o in found
                ]
            )

        return await _call(context, self.authenticate, body)


def server_options(settings: StreamSettings) -> list[tuple[str, Any]]:
    # Every message of this protocol is a few addresses: bound what a client may send.
    return [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", 4 * 1024 * 1024),
        ("grpc.max_metadata_size", 16 * 1024),
        ("grpc.max_concurrent_streams", 1000),
        ("grpc.so_reuseport", 0),
    ]


@dataclass
class ControlServer:
    """A running control server: ``port`` is the one bound (useful with port 0)."""

    server: grpc.aio.Server
    sessions: Sessions
    port: int
    sweeper: asyncio.Task[None]

    async def stop(self, grace: float = 1.0) -> None:
        self.sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.sweeper
        await self.server.stop(grace)
        await self.sessions.close_all()


async def start(
    settings: StreamSettings, dataserver: DataServer, authenticate: Authenticator
) -> ControlServer:
    """Start serving on ``settings.listen``; the data server's leftovers from a previous
    control server are stopped first (their ports are then free again)."""
    reaped = await dataserver.reap()
    if reaped:
        log.warning("stopped %d forwarders a previous control server left", len(reaped))
    pool = PortPool(settings.port_first, settings.port_last, settings.data_host)
    sessions = Sessions(
        pool, dataserver, settings.limits(), settings.advertise_host, settings.leg_tls
    )
    server = grpc.aio.server(options=server_options(settings))
    pb_grpc.add_ControlServicer_to_server(Control(sessions, authenticate), server)
    spb_grpc.add_SessionsServicer_to_server(
        SessionsService(sessions, authenticate, dataserver.name), server
    )
    if settings.tls_cert is not None and settings.tls_key is not None:
        creds = grpc.ssl_server_credentials(
            [(settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())]
        )
        port = server.add_secure_port(settings.listen, creds)
    elif settings.insecure:
        port = server.add_insecure_port(settings.listen)
    else:
        raise ValueError(
            "the control server needs stream.tls_cert and stream.tls_key (strato stream "
            "cert makes them), or stream.insecure for development"
        )
    await server.start()
    if isinstance(dataserver, Warms):
        await dataserver.warm()  # spare forwarders: a session's setup need not start one
    sweeper = asyncio.create_task(_sweep(sessions, settings.sweep_interval))
    return ControlServer(server, sessions, port, sweeper)


async def _sweep(sessions: Sessions, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await sessions.sweep()
        except Exception:  # the next sweep tries again; the server goes on
            log.exception("sweeping sessions failed")
