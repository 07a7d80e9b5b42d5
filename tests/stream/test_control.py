"""The control server against a SciStream client: stubs generated from the public proto
drive req/hello/update/release on a real grpc.aio server on loopback, with real strato
tokens. The data server here is a small real one that holds the listening sockets it is
asked for and records the rest, so ports can be counted; the builtin forwarder's own
tests are in test_dataservers.py."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio

from strato.auth import Scope
from strato.context import Context
from strato.stream.control import certs
from strato.stream.control.auth import strato_tokens
from strato.stream.control.errors import reason_from
from strato.stream.control.server import ControlServer, start
from strato.stream.dataserver.base import Address, Counters, DataServerError, Forwarding
from strato.stream.proto import scistream_pb2 as pb
from strato.stream.proto import scistream_pb2_grpc as pb_grpc
from strato.stream.proto import sessions_pb2 as spb
from strato.stream.proto import sessions_pb2_grpc as spb_grpc
from strato.stream.settings import StreamSettings

# Above the kernel's ephemeral ports (32768-60999): no socket of the system's choosing
# (a test server on port 0) can sit in a pool the tests count.
FIRST, LAST = 62100, 62119  # a pool of 20 ports


class SocketDataServer:
    """Listens on every listener it is asked to (real sockets), records targets."""

    name = "test"

    def __init__(self) -> None:
        self.socks: dict[str, list[socket.socket]] = {}
        self.targets: dict[str, tuple[Address, ...]] = {}

    async def open(self, forwarding: Forwarding) -> None:
        held: list[socket.socket] = []
        for a in forwarding.listeners:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((a.host, a.port))
            except OSError as exc:
                s.close()
                for h in held:
                    h.close()
                raise DataServerError(f"port {a.port}: {exc}") from None
            s.listen()
            held.append(s)
        self.socks[forwarding.session] = held
        self.targets[forwarding.session] = forwarding.targets

    async def update(self, session: str, targets: tuple[Address, ...]) -> None:
        self.targets[session] = targets

    async def close(self, session: str) -> None:
        for s in self.socks.pop(session, []):
            s.close()
        self.targets.pop(session, None)

    async def alive(self, session: str) -> bool:
        return session in self.socks

    async def counters(self, session: str) -> list[Counters]:
        return [Counters(Address(*s.getsockname()), 0, 0, 0) for s in self.socks[session]]

    async def reap(self) -> list[str]:
        return []

    async def close_all(self) -> None:
        for session in list(self.socks):
            await self.close(session)


def listening_in_pool() -> int:
    """Ports of the pool something listens on, counted by trying to bind them."""
    n = 0
    for port in range(FIRST, LAST + 1):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                n += 1
    return n


@pytest.fixture
def tokens(context: Context) -> dict[str, str]:
    ids = context.identities
    ids.create_user("alice", scopes={Scope.STREAM})
    ids.create_user("bob", scopes={Scope.STREAM, Scope.READ})
    return {
        "alice": ids.create_token("alice", {Scope.STREAM}).secret,
        "bob": ids.create_token("bob", {Scope.STREAM}).secret,
        "reader": ids.create_token("bob", {Scope.READ}).secret,
    }


Start = Callable[..., Any]


@pytest_asyncio.fixture
async def gateway(context: Context) -> AsyncIterator[Start]:
    started: list[ControlServer] = []

    async def go(**settings: Any) -> tuple[ControlServer, SocketDataServer]:
        values: dict[str, Any] = {
            "listen": "127.0.0.1:0",
            "port_first": FIRST,
            "port_last": LAST,
            "insecure": True,
            "hello_deadline": 5.0,
            # Plaintext legs: this data server only holds sockets (TLS legs: test_e2e.py).
            "leg_tls": False,
            **settings,
        }
        ds = SocketDataServer()
        server = await start(StreamSettings(**values), ds, strato_tokens(context.identities))
        started.append(server)
        return server, ds

    yield go
    for server in started:
        await server.stop(0)


def md(token: str, bearer: bool = False) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}" if bearer else token),)


async def failure(call: Any) -> tuple[grpc.StatusCode, str | None, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    err = info.value
    return err.code(), reason_from(err.trailing_metadata()), err.details() or ""


async def inbound(
    stub: pb_grpc.ControlStub, token: str, uid: str, num_conn: int, app: list[str]
) -> tuple[pb.Response, pb.AppResponse]:
    """What SciStream's client does for one side: req, and meanwhile the app's hello."""
    req = asyncio.ensure_future(
        stub.req(
            pb.Request(uid=uid, role="PROD", num_conn=num_conn, rate=10000), metadata=md(token)
        )
    )
    await asyncio.sleep(0.05)
    hello = await stub.hello(
        pb.Hello(uid=uid, role="PROD", prod_listeners=app), metadata=md(token, bearer=True)
    )
    return await req, hello


@pytest.mark.asyncio
async def test_full_cycle_and_two_sessions_isolated(gateway: Start, tokens: dict[str, str]) -> None:
    server, ds = await gateway()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        stub = pb_grpc.ControlStub(ch)
        a, b = str(uuid.uuid1()), str(uuid.uuid1())
        (ra, ha), (rb, hb) = await asyncio.gather(
            inbound(stub, tokens["alice"], a, 3, ["10.0.0.5:7000", "10.0.0.5:7001"]),
            inbound(stub, tokens["bob"], b, 2, ["10.0.0.9:9000"]),
        )
        assert len(ra.listeners) == 3
        assert len(rb.listeners) == 2
        assert not set(ra.listeners) & set(rb.listeners)
        assert list(ra.prod_listeners) == ["10.0.0.5:7000", "10.0.0.5:7001"]
        assert list(rb.prod_listeners) == ["10.0.0.9:9000"]
        assert ha.message == "Sending Prod listeners..."
        assert list(ha.listeners) == list(ra.listeners)
        assert list(hb.listeners) == list(rb.listeners)
        for listener in ra.listeners:
            host, port = listener.rsplit(":", 1)
            assert host == "127.0.0.1"
            assert FIRST <= int(port) <= LAST

        # update: listener i forwards to target i mod k; the listeners now listen.
        up = await stub.update(
            pb.UpdateTargets(uid=a, remote_listeners=list(ra.prod_listeners)),
            metadata=md(tokens["alice"]),
        )
        assert list(up.listeners) == list(ra.listeners)
        assert list(up.prod_listeners) == ["10.0.0.5:7000", "10.0.0.5:7001", "10.0.0.5:7000"]
        assert [str(t) for t in ds.targets[a]] == list(up.prod_listeners)
        assert b not in ds.targets
        for listener in ra.listeners:
            port = int(listener.rsplit(":", 1)[1])
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        assert listening_in_pool() == 3

        # Bob sees his session only; Alice's counters are hers.
        sessions = spb_grpc.SessionsStub(ch)
        mine = await sessions.ListSessions(spb.ListSessionsRequest(), metadata=md(tokens["bob"]))
        assert [s.uid for s in mine.sessions] == [b]
        assert mine.sessions[0].state == "ready"
        counted = await sessions.Counters(spb.CountersRequest(uid=a), metadata=md(tokens["alice"]))
        assert sorted(c.listener for c in counted.counters) == sorted(ra.listeners)
        status = await sessions.Status(spb.StatusRequest(), metadata=md(tokens["bob"]))
        assert (status.sessions, status.ports_total, status.ports_free) == (2, 20, 15)

        # Another identity may neither update nor release Alice's session.
        for call in (
            stub.update(
                pb.UpdateTargets(uid=a, remote_listeners=["1.2.3.4:5"]), metadata=md(tokens["bob"])
            ),
            stub.release(pb.Release(uid=a), metadata=md(tokens["bob"])),
            sessions.Counters(spb.CountersRequest(uid=a), metadata=md(tokens["bob"])),
        ):
            code, reason, _ = await failure(call)
            assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "AUTH_ERROR")
        assert a in ds.socks

        # Release: ports back, data server closed; again: still OK (idempotent).
        await stub.release(pb.Release(uid=a), metadata=md(tokens["alice"]))
        await stub.release(pb.Release(uid=a), metadata=md(tokens["alice"]))
        assert a not in ds.socks
        assert listening_in_pool() == 0
        await stub.release(pb.Release(uid=b), metadata=md(tokens["bob"]))
        assert server.sessions.pool.reserved == 0
        code, reason, _ = await failure(
            stub.update(
                pb.UpdateTargets(uid=a, remote_listeners=["1.2.3.4:5"]),
                metadata=md(tokens["alice"]),
            )
        )
        assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "INVALID_UID")


@pytest.mark.asyncio
async def test_hello_first_and_consumer_hello_with_role_prod(
    gateway: Start, tokens: dict[str, str]
) -> None:
    server, _ = await gateway()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        stub = pb_grpc.ControlStub(ch)
        uid = str(uuid.uuid1())
        # SciStream's client sends the consumer side's hello with role PROD, and here it
        # comes before the req: it waits for it and gets the listeners.
        hello = asyncio.ensure_future(
            stub.hello(pb.Hello(uid=uid, role="PROD"), metadata=md(tokens["alice"]))
        )
        await asyncio.sleep(0.1)
        resp = await stub.req(
            pb.Request(uid=uid, role="CONS", num_conn=2, rate=1), metadata=md(tokens["alice"])
        )
        app = await hello
        assert len(resp.listeners) == 2
        assert list(resp.prod_listeners) == []
        assert list(app.listeners) == list(resp.listeners)
        code, reason, _ = await failure(
            stub.req(pb.Request(uid=uid, role="CONS", num_conn=1), metadata=md(tokens["alice"]))
        )
        assert (code, reason) == (grpc.StatusCode.ALREADY_EXISTS, "INVALID_UID")


@pytest.mark.asyncio
async def test_errors_named_and_nothing_leaked(gateway: Start, tokens: dict[str, str]) -> None:
    server, ds = await gateway(hello_deadline=0.5)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        stub = pb_grpc.ControlStub(ch)
        alice = md(tokens["alice"])

        async def req(uid: str, role: str = "PROD", n: int = 1) -> Any:
            return stub.req(pb.Request(uid=uid, role=role, num_conn=n), metadata=alice)

        # No token, a wrong one, one without the stream scope.
        code, reason, _ = await failure(stub.req(pb.Request(uid="u1", role="PROD", num_conn=1)))
        assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "AUTH_ERROR")
        code, reason, _ = await failure(
            stub.req(pb.Request(uid="u1", role="PROD", num_conn=1), metadata=md("strato_nope"))
        )
        assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "AUTH_ERROR")
        code, reason, _ = await failure(
            stub.req(pb.Request(uid="u1", role="PROD", num_conn=1), metadata=md(tokens["reader"]))
        )
        assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "AUTH_ERROR")

        # Bad role, num_conn, uid.
        code, reason, msg = await failure(await req("u1", role="BOTH"))
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")
        assert "role" in msg
        code, _, msg = await failure(await req("u1", n=0))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert "num_conn" in msg
        code, reason, _ = await failure(await req("bad uid!"))
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_UID")

        # Unknown uid.
        code, reason, _ = await failure(
            stub.update(
                pb.UpdateTargets(uid="nobody", remote_listeners=["1.2.3.4:5"]), metadata=alice
            )
        )
        assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "INVALID_UID")
        await stub.release(pb.Release(uid="nobody"), metadata=alice)  # idempotent: OK

        # More ports than the pool holds.
        code, reason, msg = await failure(await req("big", n=21))
        assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "NO_RESOURCE")
        assert "21 ports" in msg

        # No hello: DEADLINE_EXCEEDED at the deadline, the ports back.
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        code, reason, _ = await failure(await req("lonely", n=4))
        assert (code, reason) == (grpc.StatusCode.DEADLINE_EXCEEDED, "TIMEOUT")
        assert 0.45 <= loop.time() - t0 < 2.0

        # A malformed ip:port in the hello: the hello refused, and its waiting req too.
        pending = asyncio.ensure_future(await req("badhello", n=2))
        await asyncio.sleep(0.05)
        code, reason, msg = await failure(
            stub.hello(
                pb.Hello(uid="badhello", role="PROD", prod_listeners=["10.0.0.1:99999"]),
                metadata=alice,
            )
        )
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")
        assert "prod_listeners[0]" in msg
        code, reason, _ = await failure(pending)
        assert (code, reason) == (grpc.StatusCode.ABORTED, "INVALID_REQUEST")

        # A malformed target in an update.
        ok = asyncio.ensure_future(await req("fine", n=1))
        await asyncio.sleep(0.05)
        await stub.hello(pb.Hello(uid="fine", role="PROD"), metadata=alice)
        await ok
        for bad in ("10.0.0.1", "10.0.0.1:0", "host name:80", "::1:80", "1.2.3.4:x"):
            code, reason, _ = await failure(
                stub.update(pb.UpdateTargets(uid="fine", remote_listeners=[bad]), metadata=alice)
            )
            assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST"), bad
        await stub.release(pb.Release(uid="fine"), metadata=alice)

        assert len(server.sessions) == 0
        assert server.sessions.pool.reserved == 0
        assert not ds.socks
        assert listening_in_pool() == 0


@pytest.mark.asyncio
async def test_thousand_cycles_leave_no_port(gateway: Start, tokens: dict[str, str]) -> None:
    server, ds = await gateway()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        stub = pb_grpc.ControlStub(ch)
        alice = md(tokens["alice"])
        for i in range(1000):
            uid = f"cycle-{i}"
            req = asyncio.ensure_future(
                stub.req(pb.Request(uid=uid, role="PROD", num_conn=2), metadata=alice)
            )
            await stub.hello(
                pb.Hello(uid=uid, role="PROD", prod_listeners=["127.0.0.1:9"]), metadata=alice
            )
            await req
            if i % 10 == 0:  # every tenth also opens its listeners
                await stub.update(
                    pb.UpdateTargets(uid=uid, remote_listeners=["127.0.0.1:9"]), metadata=alice
                )
            await stub.release(pb.Release(uid=uid), metadata=alice)
    assert server.sessions.pool.reserved == 0
    assert len(server.sessions) == 0
    assert not ds.socks
    assert listening_in_pool() == 0


@pytest.mark.asyncio
async def test_idle_session_released_after_ttl(gateway: Start, tokens: dict[str, str]) -> None:
    server, ds = await gateway(ttl=0.3, sweep_interval=0.1)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        stub = pb_grpc.ControlStub(ch)
        alice = md(tokens["alice"])
        req = asyncio.ensure_future(
            stub.req(pb.Request(uid="idle", role="PROD", num_conn=2), metadata=alice)
        )
        await stub.hello(pb.Hello(uid="idle", role="PROD"), metadata=alice)
        await req
        await stub.update(
            pb.UpdateTargets(uid="idle", remote_listeners=["127.0.0.1:9"]), metadata=alice
        )
        assert listening_in_pool() == 2
        await asyncio.sleep(1.0)
        assert len(server.sessions) == 0
        assert not ds.socks
        assert listening_in_pool() == 0
        assert server.sessions.pool.reserved == 0


@pytest.mark.asyncio
async def test_tls_with_pinned_self_signed_cert(
    gateway: Start, tokens: dict[str, str], tmp_path: Path
) -> None:
    crt, key = tmp_path / "server.crt", tmp_path / "server.key"
    certs.write(crt, key, ["127.0.0.1"])
    assert key.stat().st_mode & 0o077 == 0
    server, _ = await gateway(tls_cert=crt, tls_key=key, insecure=False)
    pinned = grpc.ssl_channel_credentials(root_certificates=crt.read_bytes())
    async with grpc.aio.secure_channel(f"127.0.0.1:{server.port}", pinned) as ch:
        stub = pb_grpc.ControlStub(ch)
        await stub.release(pb.Release(uid="x"), metadata=md(tokens["alice"]))
    # A client that trusts another certificate cannot talk to it.
    other_crt, other_key = tmp_path / "other.crt", tmp_path / "other.key"
    certs.write(other_crt, other_key, ["127.0.0.1"])
    wrong = grpc.ssl_channel_credentials(root_certificates=other_crt.read_bytes())
    async with grpc.aio.secure_channel(f"127.0.0.1:{server.port}", wrong) as ch:
        code, _, _ = await failure(
            pb_grpc.ControlStub(ch).release(
                pb.Release(uid="x"), metadata=md(tokens["alice"]), timeout=3
            )
        )
        assert code == grpc.StatusCode.UNAVAILABLE


def test_proto_is_scistreams() -> None:
    """The wire contract: SciStream's package, service, messages and field numbers."""
    fields = {
        name: {f.name: (f.number, f.type, f.is_repeated) for f in msg.DESCRIPTOR.fields}
        for name, msg in {
            "Request": pb.Request,
            "UpdateTargets": pb.UpdateTargets,
            "Release": pb.Release,
            "Hello": pb.Hello,
            "Response": pb.Response,
            "AppResponse": pb.AppResponse,
        }.items()
    }
    s, i = 9, 5  # TYPE_STRING, TYPE_INT32
    rep, opt = True, False
    assert fields == {
        "Request": {
            "uid": (1, s, opt),
            "role": (2, s, opt),
            "num_conn": (3, i, opt),
            "rate": (4, i, opt),
        },
        "UpdateTargets": {"uid": (1, s, opt), "remote_listeners": (2, s, rep), "role": (3, s, opt)},
        "Release": {"uid": (1, s, opt)},
        "Hello": {"uid": (1, s, opt), "prod_listeners": (2, s, rep), "role": (3, s, opt)},
        "Response": {"listeners": (1, s, rep), "prod_listeners": (2, s, rep)},
        "AppResponse": {"message": (1, s, opt), "listeners": (2, s, rep)},
    }
    service = pb.DESCRIPTOR.services_by_name["Control"]
    assert service.full_name == "scistream.Control"
    assert {m.name: (m.input_type.name, m.output_type.name) for m in service.methods} == {
        "req": ("Request", "Response"),
        "update": ("UpdateTargets", "Response"),
        "release": ("Release", "Response"),
        "hello": ("Hello", "AppResponse"),
    }
