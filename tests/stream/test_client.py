"""The client as a user runs it: `strato stream inbound-request | outbound-request |
release | hello | update | connect` as subprocesses against two real control servers on
loopback (plaintext, and TLS with the certificate `strato stream cert` made, pinned),
printing what SciStream's client prints; bytes through the listeners they print; every
refusal one line and a nonzero exit. Then the same through the Python API."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest
import pytest_asyncio

from strato.auth import Scope
from strato.context import Context
from strato.stream import client
from strato.stream.client_cli import MOCK_UID
from strato.stream.control.auth import strato_tokens
from strato.stream.control.server import ControlServer, start
from strato.stream.dataserver.base import Address
from strato.stream.dataserver.builtin import BuiltinDataServer
from strato.stream.settings import StreamSettings
from tests.stream.support import roundtrip, server

pytestmark = pytest.mark.asyncio
PROD_PORTS, CONS_PORTS = (62400, 62409), (62500, 62509)


def _token(context: Context, user: str) -> str:
    context.identities.create_user(user, scopes={Scope.STREAM})
    secret: str = context.identities.create_token(user, {Scope.STREAM}).secret
    return secret


@pytest.fixture
def token(context: Context) -> str:
    return _token(context, "alice")


@pytest.fixture
def bob(context: Context) -> str:
    return _token(context, "bob")


def strato(
    *args: str, cwd: Path, token: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "STRATO_TOKEN"}
    if token is not None:
        env["STRATO_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "strato", "stream", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )


async def run(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(strato, *args, **kw)


def ok(done: subprocess.CompletedProcess[str]) -> list[str]:
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """A refusal as a user sees it: a nonzero exit, one line on stderr, no traceback."""
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def listeners_of(lines: list[str]) -> list[str]:
    return [line.split('"')[1] for line in lines if line.startswith("listeners: ")]


def through(address: str, size: int = 1_000_000) -> bool:
    host, port = address.rsplit(":", 1)
    return roundtrip(Address(host, int(port)), size)


Gateways = Callable[..., Any]


@pytest_asyncio.fixture
async def gateways(context: Context, tmp_path: Path) -> AsyncIterator[Gateways]:
    """``await gateways(tls=..., leg_tls=...)``: a producer's and a consumer's control
    server (builtin data servers with a spare forwarder) and how to reach each: (server,
    --s2cs, cert options)."""
    started: list[ControlServer] = []

    async def go(*, tls: bool, leg_tls: bool) -> list[tuple[ControlServer, str, list[str]]]:
        out = []
        for name, ports in (("p", PROD_PORTS), ("c", CONS_PORTS)):
            extra: dict[str, Any] = {"insecure": True}
            options = ["--insecure"]
            if tls:
                cert, key = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
                made = await run(
                    "cert", "127.0.0.1", "--cert", str(cert), "--key", str(key), cwd=tmp_path
                )
                assert made.returncode == 0, made.stderr
                extra = {"tls_cert": cert, "tls_key": key}
                options = ["--server_cert", str(cert)]
            settings = StreamSettings(
                listen="127.0.0.1:0",
                port_first=ports[0],
                port_last=ports[1],
                hello_deadline=10.0,
                leg_tls=leg_tls,
                **extra,
            )
            # With a spare forwarder each, as `strato stream serve` runs them.
            ds = BuiltinDataServer(tmp_path / name, spares=1)
            cs = await start(settings, ds, strato_tokens(context.identities))
            started.append(cs)
            out.append((cs, f"127.0.0.1:{cs.port}", options))
        return out

    yield go
    for cs in started:
        await cs.stop(0)


async def test_inbound_outbound_release_print_what_scistream_prints_and_data_flows(
    gateways: Gateways, token: str, tmp_path: Path
) -> None:
    # SciStream's own flow: its client knows nothing of leg certificates, so plain legs.
    (prod, p_addr, p_opt), (cons, c_addr, c_opt) = await gateways(tls=False, leg_tls=False)
    with server("echo") as app:
        inbound = await run(
            "inbound-request",
            "--s2cs",
            p_addr,
            *p_opt,
            "--remote_ip",
            app.host,
            "--receiver_ports",
            str(app.port),
            "--num_conn",
            "2",
            "--rate",
            "100",
            "--mock",
            "True",
            cwd=tmp_path,
            token=token,
        )
        lines = ok(inbound)
        p_listeners = listeners_of(lines)
        assert lines == [
            "uid; s2cs; access_token; role",
            f"{MOCK_UID} {p_addr} *** PROD",  # the token itself is never printed
            "sending client request message",
            "started client request",
            "waiting for hello message",
            "sending for hello message",
            "sending for hello message",
            "Hello message sent successfully",
            f'listeners: "{p_listeners[0]}"',
            f'listeners: "{p_listeners[1]}"',
            f'prod_listeners: "{app}"',
            "",
            f"Listeners: {p_listeners!r}",
        ]
        assert token not in inbound.stdout + inbound.stderr
        assert all(
            int(a.rsplit(":")[1]) in range(PROD_PORTS[0], PROD_PORTS[1] + 1) for a in p_listeners
        )

        outbound = await run(
            "outbound-request",
            "--s2cs",
            c_addr,
            *c_opt,
            "--remote_ip",
            "127.0.0.1",
            "--receiver_ports",
            "5074",
            "--num_conn",
            "2",
            MOCK_UID,
            ",".join(p_listeners),
            cwd=tmp_path,
            token=token,
        )
        lines = ok(outbound)
        c_listeners = listeners_of(lines)
        assert lines[:6] == [
            "uid; s2cs; access_token; role",
            f"{MOCK_UID} {c_addr} *** CONS",
            "sending client request message",
            "started client request",
            "waiting for hello message",
            "Hello message sent successfully",
        ]
        assert len(c_listeners) == 2
        for listener in c_listeners:  # consumer gateway -> producer gateway -> application
            assert await asyncio.to_thread(through, listener)

        released = await run(
            "release",
            MOCK_UID,
            "--s2cs",
            p_addr,
            "--s2cs",
            c_addr,
            "--insecure",
            cwd=tmp_path,
            token=token,
        )
        assert ok(released) == ["Release completed", "Release completed"]
        again = await run(
            "release", MOCK_UID, "--s2cs", p_addr, "--insecure", cwd=tmp_path, token=token
        )
        assert ok(again) == ["Release completed"]  # idempotent, as SciStream's server is not
    assert prod.sessions.pool.reserved == 0
    assert cons.sessions.pool.reserved == 0


async def test_tls_control_servers_and_tls_legs_from_the_two_halves(
    gateways: Gateways, token: str, tmp_path: Path
) -> None:
    (prod, p_addr, p_opt), (cons, c_addr, c_opt) = await gateways(tls=True, leg_tls=True)
    uid = "halves-1"
    with server("echo") as app:
        inbound = await run(
            "inbound-request",
            "--s2cs",
            p_addr,
            *p_opt,
            "--remote_ip",
            app.host,
            "--receiver_ports",
            str(app.port),
            "--num_conn",
            "1",
            "--uid",
            uid,
            "--leg-cert",
            "p-leg.pem",
            cwd=tmp_path,
            token=token,
        )
        lines = ok(inbound)
        assert lines[-2:] == ["leg: tls", "leg certificate: p-leg.pem"]
        assert "strato stream update" in inbound.stderr  # what to do next, said
        p_listeners = listeners_of(lines)
        outbound = await run(
            "outbound-request",
            "--s2cs",
            c_addr,
            *c_opt,
            "--num_conn",
            "1",
            "--receiver_ports",
            "5074",
            "--peer-leg-cert",
            "p-leg.pem",
            "--leg-cert",
            "c-leg.pem",
            uid,
            p_listeners[0],
            cwd=tmp_path,
            token=token,
        )
        c_listeners = listeners_of(ok(outbound))
        # The producer's gateway does not forward before it knows whom to let in.
        assert not await asyncio.to_thread(_works, c_listeners[0])
        finished = await run(
            "update",
            uid,
            "--s2cs",
            p_addr,
            *p_opt,
            "--peer-leg-cert",
            "c-leg.pem",
            cwd=tmp_path,
            token=token,
        )
        assert ok(finished) == [
            f'listeners: "{p_listeners[0]}"',
            f'prod_listeners: "{app}"',
            "Update completed",
        ]
        assert await asyncio.to_thread(through, c_listeners[0])
        released = await run(
            "release",
            uid,
            "--s2cs",
            p_addr,
            "--s2cs",
            c_addr,
            "--server_cert",
            str(tmp_path / "p.crt"),
            "--server_cert",
            str(tmp_path / "c.crt"),
            cwd=tmp_path,
            token=token,
        )
        assert ok(released) == ["Release completed", "Release completed"]
    assert prod.sessions.pool.reserved == 0
    assert cons.sessions.pool.reserved == 0


def _works(address: str) -> bool:
    try:
        return through(address, 10_000)
    except OSError:
        return False


async def test_connect_over_tls_prints_where_the_consumer_connects(
    gateways: Gateways, token: str, tmp_path: Path
) -> None:
    (prod, p_addr, _), (cons, c_addr, _) = await gateways(tls=True, leg_tls=True)
    p_ds, c_ds = prod.sessions.dataserver, cons.sessions.dataserver
    assert isinstance(p_ds, BuiltinDataServer)
    assert isinstance(c_ds, BuiltinDataServer)
    spares = p_ds.spare_pids() + c_ds.spare_pids()
    assert len(spares) == 2  # started with the control servers
    with server("echo") as app:
        done = await run(
            "connect",
            "--producer-gateway",
            p_addr,
            "--consumer-gateway",
            c_addr,
            "--producer-targets",
            str(app),
            "--num-conn",
            "2",
            "--producer-cert",
            str(tmp_path / "p.crt"),
            "--consumer-cert",
            str(tmp_path / "c.crt"),
            cwd=tmp_path,
            token=token,
        )
        lines = ok(done)
        assert lines[0].startswith("uid: ")
        assert lines[1] == "leg: tls"
        assert "set up in" in done.stderr
        listeners = listeners_of(lines)
        assert len(listeners) == 2
        for listener in listeners:
            assert await asyncio.to_thread(through, listener)
        uid = lines[0].removeprefix("uid: ")
        # The sessions went to the spares, which were already running.
        assert [p_ds.pid(uid), c_ds.pid(uid)] == spares
        released = await run(
            "release",
            uid,
            "--s2cs",
            p_addr,
            "--s2cs",
            c_addr,
            "--server_cert",
            str(tmp_path / "p.crt"),
            "--server_cert",
            str(tmp_path / "c.crt"),
            cwd=tmp_path,
            token=token,
        )
        ok(released)
    assert prod.sessions.pool.reserved == 0
    assert cons.sessions.pool.reserved == 0
    for _ in range(100):  # the replacements start in the background
        if len(p_ds.spare_pids() + c_ds.spare_pids()) == 2:
            break
        await asyncio.sleep(0.05)
    replacements = p_ds.spare_pids() + c_ds.spare_pids()
    assert len(replacements) == 2
    assert not set(replacements) & set(spares)
    await prod.stop(0)
    await cons.stop(0)
    for pid in spares + replacements:  # stopping a control server leaves no forwarder
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"


async def test_the_application_controllers_hello_answers_a_waiting_request(
    gateways: Gateways, token: str, tmp_path: Path
) -> None:
    (prod, p_addr, p_opt), _ = await gateways(tls=True, leg_tls=False)
    with server("echo") as app:
        waiting = asyncio.create_task(
            run(
                "inbound-request",
                "--s2cs",
                p_addr,
                *p_opt,
                "--no-hello",
                "--uid",
                "appctrl-1",
                "--num_conn",
                "1",
                cwd=tmp_path,
                token=token,
            )
        )
        for _ in range(200):  # until the req is in (the session is then listed)
            if prod.sessions.get("appctrl-1") is not None:
                break
            await asyncio.sleep(0.05)
        hello = await run(
            "hello",
            "appctrl-1",
            "--s2cs",
            p_addr,
            *p_opt,
            "--prod_listeners",
            str(app),
            cwd=tmp_path,
            token=token,
        )
        lines = ok(hello)
        assert lines[0] == "Sending Prod listeners..."
        assert lines[1] == 'message: "Sending Prod listeners..."'
        hello_listeners = listeners_of(lines)
        inbound = ok(await waiting)
        assert "sending for hello message" not in inbound  # the application said hello
        assert listeners_of(inbound) == hello_listeners
        assert await asyncio.to_thread(through, hello_listeners[0])
        ok(await run("release", "appctrl-1", "--s2cs", p_addr, *p_opt, cwd=tmp_path, token=token))
    assert prod.sessions.pool.reserved == 0


async def test_refusals_are_one_line_and_a_nonzero_exit(
    gateways: Gateways, token: str, bob: str, tmp_path: Path
) -> None:
    (prod, p_addr, p_opt), (_, c_addr, _) = await gateways(tls=True, leg_tls=False)
    p_cert, c_cert = str(tmp_path / "p.crt"), str(tmp_path / "c.crt")
    with server("echo") as app:
        async with client.Control(client.Gateway(p_addr, Path(p_cert)), token) as c:
            half = await client.inbound_request(
                client.Gateway(p_addr, Path(p_cert)), token, "alices", [str(app)], 1
            )
            assert half.targets == [str(app)]
            cases = {
                "unknown uid": run(
                    "update",
                    "nosuch",
                    "--s2cs",
                    p_addr,
                    *p_opt,
                    "--remote_listeners",
                    str(app),
                    cwd=tmp_path,
                    token=token,
                ),
                "bad address": run(
                    "release", "x", "--s2cs", "127.0.0.1", *p_opt, cwd=tmp_path, token=token
                ),
                "bad target": run(
                    "connect",
                    "--producer-gateway",
                    p_addr,
                    "--consumer-gateway",
                    c_addr,
                    "--producer-targets",
                    "10.0.0.1",
                    "--producer-cert",
                    p_cert,
                    "--consumer-cert",
                    c_cert,
                    cwd=tmp_path,
                    token=token,
                ),
                "no token": run("release", "x", "--s2cs", p_addr, *p_opt, cwd=tmp_path),
                "wrong token": run(
                    "release",
                    "x",
                    "--s2cs",
                    p_addr,
                    *p_opt,
                    cwd=tmp_path,
                    token="strato_not-a-token",
                ),
                "wrong cert": run(
                    "release",
                    "x",
                    "--s2cs",
                    p_addr,
                    "--server_cert",
                    c_cert,
                    cwd=tmp_path,
                    token=token,
                ),
                "not a certificate": run(
                    "release",
                    "x",
                    "--s2cs",
                    p_addr,
                    "--server_cert",
                    str(tmp_path / "p.key"),
                    cwd=tmp_path,
                    token=token,
                ),
                "plain to TLS": run(
                    "release", "x", "--s2cs", p_addr, "--insecure", cwd=tmp_path, token=token
                ),
                "no certificate": run("release", "x", "--s2cs", p_addr, cwd=tmp_path, token=token),
                "nobody there": run(
                    "release", "x", "--s2cs", "127.0.0.1:9", *p_opt, cwd=tmp_path, token=token
                ),
                "another's session": run(
                    "release", "alices", "--s2cs", p_addr, *p_opt, cwd=tmp_path, token=bob
                ),
                "bad --mock": run(
                    "inbound-request",
                    "--s2cs",
                    p_addr,
                    *p_opt,
                    "--mock",
                    "maybe",
                    cwd=tmp_path,
                    token=token,
                ),
            }
            said = dict(zip(cases, await asyncio.gather(*cases.values()), strict=True))
            errors = {name: one_line_error(done) for name, done in said.items()}
            assert "NOT_FOUND" in errors["unknown uid"]
            assert "'nosuch'" in errors["unknown uid"]
            assert "--s2cs '127.0.0.1' is not an address" in errors["bad address"]
            assert "--producer-targets '10.0.0.1' is not an address" in errors["bad target"]
            assert "no token" in errors["no token"]
            assert "STRATO_TOKEN" in errors["no token"]
            assert "UNAUTHENTICATED" in errors["wrong token"]
            assert f"not the one given (--server_cert {c_cert})" in errors["wrong cert"]
            assert "not a PEM certificate" in errors["not a certificate"]
            assert "it serves TLS" in errors["plain to TLS"]
            assert "--server_cert FILE" in errors["no certificate"]
            assert "connection refused" in errors["nobody there"]
            assert "PERMISSION_DENIED" in errors["another's session"]
            assert "--mock 'maybe'" in errors["bad --mock"]
            assert {said[n].returncode for n in ("bad address", "no token", "bad --mock")} == {2}
            assert said["wrong cert"].returncode == 1
            # Bob's attempt changed nothing: Alice's session still forwards.
            assert (await c.check("alices")).state == "forwarding"
            await c.release("alices")
    assert prod.sessions.pool.reserved == 0


async def test_the_python_api_sets_up_tls_halves_and_releases_what_fails(
    gateways: Gateways, token: str, tmp_path: Path
) -> None:
    (prod, p_addr, _), (cons, c_addr, _) = await gateways(tls=True, leg_tls=True)
    p = client.Gateway(p_addr, tmp_path / "p.crt")
    c = client.Gateway(c_addr, tmp_path / "c.crt")
    seen: list[str] = []
    with server("echo") as app:
        inbound = await client.inbound_request(
            p, token, "api-1", [str(app)], 1, progress=seen.append
        )
        assert "Hello message sent successfully" in seen
        assert inbound.leg == "tls"
        assert inbound.targets == []
        outbound = await client.outbound_request(
            c,
            token,
            "api-1",
            inbound.listeners,
            ["127.0.0.1:5074"],
            1,
            peer_leg_cert=inbound.leg_cert,
        )
        assert outbound.targets == inbound.listeners
        reply = await client.complete(p, token, "api-1", outbound.leg_cert)
        assert list(reply.prod_listeners) == [str(app)]
        assert await asyncio.to_thread(through, outbound.listeners[0])
        await client.release("api-1", [p, c], token)

        # A consumer side without the producer's certificate is refused and released.
        await client.inbound_request(p, token, "api-2", [str(app)], 1)
        with pytest.raises(client.StreamClientError, match="--peer-leg-cert"):
            await client.outbound_request(c, token, "api-2", ["127.0.0.1:62400"], [], 1)
        assert cons.sessions.get("api-2") is None
        await client.release("api-2", [p], token)

        # connect whose hello is refused: both sides released, the first error raised as is.
        with pytest.raises(client.StreamClientError, match=r"hello on .*INVALID_ARGUMENT"):
            await client.connect(p, c, ["not-an-address"], token)
    assert prod.sessions.pool.reserved == 0
    assert cons.sessions.pool.reserved == 0
