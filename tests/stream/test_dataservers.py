"""The data servers on loopback: bytes through each backend, port i to target i mod k,
close frees ports, processes and descriptors, a killed forwarder is reported, reap stops
what a previous control server left, TLS legs with pinned certificates, idle streams."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest

from strato.stream.dataserver.base import Address, DataServerError, Forwarding, TlsLeg
from strato.stream.dataserver.builtin import BuiltinDataServer
from tests.stream.conftest import DataServerUnderTest, make
from tests.stream.support import (
    exchange,
    listeners,
    open_fds,
    read_all,
    roundtrip,
    server,
    tls_legs,
)

pytestmark = pytest.mark.asyncio
PLAIN = ["builtin", "haproxy"]


def bindable(address: Address) -> bool:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((address.host, address.port))
        return True
    except OSError:
        return False
    finally:
        s.close()


@pytest.mark.parametrize("dataserver", PLAIN, indirect=True)
async def test_bytes_flow_both_ways_and_are_counted(dataserver: DataServerUnderTest) -> None:
    with server("echo") as target:
        lst = listeners(1)
        await dataserver.open(Forwarding("s1", lst, (target,)))
        assert roundtrip(lst[0], 8_000_000)
        (c,) = await dataserver.counters("s1")
        assert (c.listener, c.connections, c.bytes_in, c.bytes_out) == (
            lst[0],
            1,
            8_000_000,
            8_000_000,
        )


@pytest.mark.parametrize("dataserver", PLAIN, indirect=True)
async def test_port_i_goes_to_target_i_mod_k_and_update_moves_them(
    dataserver: DataServerUnderTest,
) -> None:
    with server("ident", b"A") as a, server("ident", b"B") as b, server("ident", b"C") as c:
        lst = listeners(5)
        await dataserver.open(Forwarding("s1", lst, (a, b)))
        assert [read_all(x) for x in lst] == [b"A", b"B", b"A", b"B", b"A"]
        await dataserver.update("s1", (c,))
        assert [read_all(x) for x in lst] == [b"C"] * 5


@pytest.mark.parametrize("dataserver", PLAIN, indirect=True)
async def test_two_sessions_are_independent(dataserver: DataServerUnderTest) -> None:
    with server("ident", b"one") as one, server("ident", b"two") as two:
        l1, l2 = listeners(2), listeners(2)
        await dataserver.open(Forwarding("s1", l1, (one,)))
        await dataserver.open(Forwarding("s2", l2, (two,)))
        await dataserver.close("s1")
        assert all(bindable(x) for x in l1)
        assert [read_all(x) for x in l2] == [b"two", b"two"]


@pytest.mark.parametrize("dataserver", PLAIN, indirect=True)
async def test_close_frees_ports_processes_and_descriptors(dataserver: DataServerUnderTest) -> None:
    with server("echo") as target:
        fds_before = open_fds()
        children_before = len(psutil.Process().children(recursive=True))
        for round_ in range(5):
            lst = listeners(4)
            await dataserver.open(Forwarding(f"s{round_}", lst, (target,)))
            pid = dataserver.pid(f"s{round_}")
            assert roundtrip(lst[round_ % 4], 100_000)
            await dataserver.close(f"s{round_}")
            await dataserver.close(f"s{round_}")  # idempotent
            assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
            assert all(bindable(x) for x in lst)
            assert not await dataserver.alive(f"s{round_}")
        assert open_fds() == fds_before
        assert len(psutil.Process().children(recursive=True)) == children_before
        assert list(dataserver.state_dir.iterdir()) == []


@pytest.mark.parametrize("dataserver", PLAIN, indirect=True)
async def test_a_killed_forwarder_is_reported(dataserver: DataServerUnderTest) -> None:
    with server("echo") as target:
        lst = listeners(2)
        await dataserver.open(Forwarding("s1", lst, (target,)))
        assert await dataserver.alive("s1")
        pid = dataserver.pid("s1")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            if not await dataserver.alive("s1"):
                break
            await asyncio.sleep(0.02)
        assert not await dataserver.alive("s1")
        with pytest.raises(DataServerError):
            await dataserver.counters("s1")
        await dataserver.close("s1")
        assert all(bindable(x) for x in lst)


@pytest.mark.parametrize("dataserver", PLAIN, indirect=True)
async def test_a_busy_port_is_named(dataserver: DataServerUnderTest) -> None:
    with server("echo") as target:
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        try:
            lst = (*listeners(1), Address("127.0.0.1", port))
            with pytest.raises(DataServerError, match=str(port)):
                await dataserver.open(Forwarding("s1", lst, (target,)))
            assert bindable(lst[0])
            assert not await dataserver.alive("s1")
        finally:
            busy.close()


@pytest.mark.parametrize("backend", ["builtin", "haproxy", "stunnel"])
async def test_reap_stops_what_a_previous_server_left(backend: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with server("echo") as target:
        first = make(backend, state)
        lst = listeners(2)
        legs = tls_legs()
        fwd = Forwarding(
            "left-behind", lst, (target,), tls_in=legs[1] if backend == "stunnel" else None
        )
        await first.open(fwd)
        pid = first.pid("left-behind")
        # A marker whose pid is another process (ours) must not be acted on.
        (state / "decoy.json").write_text(
            f'{{"backend": "{first.name}", "session": "decoy", "pid": {os.getpid()}, "token": "x"}}'
        )
        # The control server dies without closing: a new one starts on the same state.
        second = make(backend, state)
        assert await second.reap() == ["left-behind"]
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
        await asyncio.sleep(0.1)  # haproxy's sockets can outlive its exit by milliseconds
        assert all(bindable(x) for x in lst)
        assert await second.reap() == []
        assert list(state.iterdir()) == []
        await first.close_all()


@pytest.mark.parametrize(
    ("dialer", "acceptor"),
    [
        ("builtin", "builtin"),
        ("stunnel", "stunnel"),
        ("builtin", "stunnel"),
        ("stunnel", "builtin"),
    ],
)
async def test_tls_leg_between_gateways(dialer: str, acceptor: str, tmp_path: Path) -> None:
    client_leg, server_leg = tls_legs()
    a, b = make(dialer, tmp_path / "a"), make(acceptor, tmp_path / "b")
    try:
        with server("echo") as target:
            wan, lan = listeners(1), listeners(1)
            await b.open(Forwarding("s", wan, (target,), tls_in=server_leg))
            await a.open(Forwarding("s", lan, wan, tls_out=client_leg))
            # stunnel ends a TLS connection whose peer half-closes before the other way has
            # drained, so the builtin dialer to stunnel is tested without a half-close.
            if (dialer, acceptor) == ("builtin", "stunnel"):
                assert exchange(lan[0], 4_000_000)
            else:
                assert roundtrip(lan[0], 4_000_000)
            await asyncio.sleep(0.3)  # stunnel counts a connection's bytes when it closes
            (ca,) = await a.counters("s")
            (cb,) = await b.counters("s")
            assert ca.bytes_in == ca.bytes_out == 4_000_000
            assert cb.bytes_in == cb.bytes_out == 4_000_000
    finally:
        await a.close_all()
        await b.close_all()


async def test_tls_leg_moves_many_megabytes_intact_both_ways_on_several_connections(
    tmp_path: Path,
) -> None:
    """Across a TLS leg between two builtin gateways: many TLS records, both directions at
    once, connections side by side, each byte arriving once and in order, the half-close
    after the last, every byte counted on both gateways."""
    client_leg, server_leg = tls_legs()
    a, b = make("builtin", tmp_path / "a"), make("builtin", tmp_path / "b")
    size, conns = 24_000_000, 3
    try:
        with server("echo") as target:
            wan, lan = listeners(1), listeners(1)
            await b.open(Forwarding("s", wan, (target,), tls_in=server_leg))
            await a.open(Forwarding("s", lan, wan, tls_out=client_leg))
            results = await asyncio.gather(
                *(asyncio.to_thread(roundtrip, lan[0], size, 60.0) for _ in range(conns))
            )
            assert results == [True] * conns
            (ca,) = await a.counters("s")
            (cb,) = await b.counters("s")
            assert (ca.connections, ca.bytes_in, ca.bytes_out) == (
                conns,
                size * conns,
                size * conns,
            )
            assert (cb.connections, cb.bytes_in, cb.bytes_out) == (
                conns,
                size * conns,
                size * conns,
            )
    finally:
        await a.close_all()
        await b.close_all()


@pytest.mark.parametrize("acceptor", ["builtin", "stunnel"])
async def test_a_wrong_pinned_certificate_is_refused(acceptor: str, tmp_path: Path) -> None:
    client_leg, _ = tls_legs()
    _, other_server_leg = tls_legs()  # pins a different client certificate
    a, b = make("builtin", tmp_path / "a"), make(acceptor, tmp_path / "b")
    try:
        with server("ident", b"secret") as target:
            wan, lan = listeners(1), listeners(1)
            await b.open(Forwarding("s", wan, (target,), tls_in=other_server_leg))
            await a.open(Forwarding("s", lan, wan, tls_out=client_leg))
            assert read_all(lan[0]) == b""
            # Nor does a client without any certificate get through.
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            with socket.create_connection((wan[0].host, wan[0].port), timeout=5) as raw:
                try:
                    with ctx.wrap_socket(raw) as tls:
                        assert tls.recv(100) == b""
                except (ssl.SSLError, ConnectionResetError):
                    pass
    finally:
        await a.close_all()
        await b.close_all()


def _tls_client_sending_with_its_finished(
    address: Address, leg: TlsLeg, data: bytes, tmp_path: Path
) -> bytes:
    """A TLS 1.3 client pinning ``leg``'s peer that sends ``data`` in the same write as
    its handshake's last message (as a fast peer's bytes can arrive together), then reads
    the answer until it has as many bytes or 5 s have passed."""
    keyfile = tmp_path / "client.pem"
    keyfile.write_bytes(leg.cert_pem + leg.key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(cadata=leg.peer_cert_pem.decode())
    ctx.load_cert_chain(keyfile)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing)
    with socket.create_connection((address.host, address.port), timeout=5) as raw:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                raw.sendall(outgoing.read())
                incoming.write(raw.recv(65536))
        tls.write(data)
        raw.sendall(outgoing.read())  # the client's Finished and the data, one write
        got = b""
        try:
            while len(got) < len(data):
                try:
                    got += tls.read(len(data))
                except ssl.SSLWantReadError:
                    chunk = raw.recv(65536)
                    if not chunk:
                        break
                    incoming.write(chunk)
        except TimeoutError:
            pass
        return got


async def test_bytes_that_come_with_the_tls_handshake_are_forwarded(tmp_path: Path) -> None:
    """Bytes that arrive together with the peer's last handshake message are forwarded at
    once, not left until more come: a peer that sends a request and waits for the answer
    (iperf3's control connection does) would wait forever."""
    client_leg, server_leg = tls_legs()
    b = BuiltinDataServer(tmp_path / "b")
    try:
        with server("echo") as target:
            wan = listeners(1)
            await b.open(Forwarding("s", wan, (target,), tls_in=server_leg))
            for _ in range(5):
                got = await asyncio.to_thread(
                    _tls_client_sending_with_its_finished, wan[0], client_leg, b"ping", tmp_path
                )
                assert got == b"ping"
    finally:
        await b.close_all()


async def test_tls_legs_are_tls13_aes_gcm_and_tls12_is_refused(tmp_path: Path) -> None:
    client_leg, server_leg = tls_legs()
    b = BuiltinDataServer(tmp_path / "b")
    try:
        with server("echo") as target:
            wan = listeners(1)
            await b.open(Forwarding("s", wan, (target,), tls_in=server_leg))
            keyfile = tmp_path / "client.pem"
            keyfile.write_bytes(client_leg.cert_pem + client_leg.key_pem)

            def dial(version: ssl.TLSVersion) -> tuple[str, str]:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.load_verify_locations(cadata=client_leg.peer_cert_pem.decode())
                ctx.load_cert_chain(keyfile)
                ctx.maximum_version = version
                with (
                    socket.create_connection((wan[0].host, wan[0].port), timeout=5) as raw,
                    ctx.wrap_socket(raw) as tls,
                ):
                    if True:
                        tls.sendall(b"ping")
                        assert tls.recv(10) == b"ping"
                        cipher = tls.cipher()
                        assert cipher is not None
                        return cipher[0], cipher[1]

            name, proto = dial(ssl.TLSVersion.TLSv1_3)
            assert proto == "TLSv1.3"
            assert name.startswith("TLS_AES_")
            assert "GCM" in name
            with pytest.raises((ssl.SSLError, ConnectionResetError)):
                dial(ssl.TLSVersion.TLSv1_2)
    finally:
        await b.close_all()


@pytest.mark.slow_idle
async def test_idle_streams_survive_past_50_seconds(tmp_path: Path) -> None:
    """SciStream's HAProxy cut a stream quiet for 50 s; here neither backend does. Slow on
    purpose: it waits 55 s (both backends in the same wait)."""
    servers = {b: make(b, tmp_path / b) for b in PLAIN}
    try:
        with server("echo") as target:
            conns = {}
            for name, ds in servers.items():
                lst = listeners(1)
                await ds.open(Forwarding("idle", lst, (target,)))
                c = socket.create_connection((lst[0].host, lst[0].port), timeout=5)
                c.sendall(b"before")
                assert c.recv(10) == b"before"
                conns[name] = c
            await asyncio.sleep(55)
            for name, c in conns.items():
                c.sendall(b"after")
                assert c.recv(10) == b"after", name
                c.close()
    finally:
        for ds in servers.values():
            await ds.close_all()
