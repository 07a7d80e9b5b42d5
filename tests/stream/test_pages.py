"""The streams page and /api/stream over HTTP, against a real control server running
inside the web app (stream.serve_in_up) on loopback: a session made through the gRPC
client and fed through its listener is listed with its listeners, targets, bytes and a
rate; release over HTTP (the API, or the page's form without JavaScript) stops its
forwarder and gives its ports back; a user sees only their own sessions and an
administrator all; hostile and unauthenticated requests are refused with a 4xx naming
what is wrong; without a control server in the process the page says so."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import socket
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil  # type: ignore[import-untyped]
import pytest
from fastapi import FastAPI

from strato.app import create_app
from strato.auth import Scope
from strato.bootstrap import ensure_admin
from strato.context import Context
from strato.settings import LogSettings, Settings
from strato.stream import client
from strato.stream.api.views import LocalGateway, Serving
from strato.stream.dataserver.base import Address
from tests.conftest import ThreadedServer
from tests.stream.support import roundtrip, server

T = TypeVar("T")
PORTS = (62500, 62509)
RELOAD = '<noscript><meta http-equiv="refresh"'


@dataclass
class Node:
    url: str
    app: FastAPI
    tokens: dict[str, str]

    @property
    def gateway(self) -> LocalGateway:
        found: LocalGateway = self.app.state.stream_gateway
        return found

    @property
    def serving(self) -> Serving:
        serving = self.gateway.serving
        assert serving is not None, "no control server runs in the app"
        return serving

    @property
    def control(self) -> client.Gateway:
        return client.Gateway(f"127.0.0.1:{self.serving.port}", insecure=True)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``coro`` on a fresh event loop in a thread of its own: a test's thread may hold
    one already (Playwright's sync API keeps one running)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@contextmanager
def stream_node(root: Path, ports: tuple[int, int] = PORTS, serve: bool = True) -> Iterator[Node]:
    """`strato api`'s app with the control server in it, on loopback, and users: ann and
    bob (scope stream), carol (read only), admin."""
    settings = Settings(
        data_dir=root / "data",
        log=LogSettings(access=False),
        stream={
            "serve_in_up": serve,
            "insecure": True,
            "listen": "127.0.0.1:0",
            "port_first": ports[0],
            "port_last": ports[1],
            "leg_tls": False,  # one gateway: no peer gateway to exchange leg certificates
            "hello_deadline": 5,
            "sweep_interval": 0.2,
            "state_dir": str(root / "stream"),
        },
    )
    ctx = Context.open(settings)
    try:
        ctx.migrate()
        tokens = {}
        for user, scopes in {
            "ann": {Scope.STREAM},
            "bob": {Scope.STREAM},
            "carol": {Scope.READ},
        }.items():
            ctx.identities.create_user(user, scopes=scopes)
            tokens[user] = ctx.identities.create_token(user, scopes).secret
        admin = ensure_admin(ctx.identities, settings)
        assert admin is not None
        tokens["admin"] = admin.secret
        app = create_app(settings, context=ctx)
        with ThreadedServer(app) as web:
            yield Node(web.url, app, tokens)
    finally:
        ctx.close()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    with stream_node(tmp_path) as served:
        yield served


async def _open(gateway: client.Gateway, token: str, uid: str, target: str, n: int) -> None:
    async with client.Control(gateway, token) as control:
        await asyncio.gather(control.req(uid, "PROD", n, 0), control.hello(uid, "PROD", [target]))
        await control.update(uid, [target])


def open_session(node: Node, who: str, target: Address, num_conn: int = 2) -> str:
    """A session made as a user makes it: req, the application's hello, update, over gRPC."""
    uid = client.new_uid()
    run(_open(node.control, node.tokens[who], uid, str(target), num_conn))
    return uid


def listed(node: Node, who: str) -> dict[str, Any]:
    answer = httpx.get(f"{node.url}/api/stream/sessions", headers=node.auth(who), timeout=30)
    assert answer.status_code == 200, answer.text
    doc: dict[str, Any] = answer.json()
    return doc


def session_of(node: Node, who: str, uid: str) -> dict[str, Any]:
    found = [s for s in listed(node, who)["sessions"] if s["uid"] == uid]
    assert len(found) == 1, found
    session: dict[str, Any] = found[0]
    return session


def address(text: str) -> Address:
    host, port = text.rsplit(":", 1)
    return Address(host, int(port))


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def eventually(check: Callable[[], T], what: str, within: float = 20.0) -> T:
    deadline = time.monotonic() + within
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {found!r}")
        time.sleep(0.1)


def test_a_session_is_listed_with_its_listeners_targets_bytes_and_rate(node: Node) -> None:
    with server("echo") as target:
        uid = open_session(node, "ann", target)
        first = session_of(node, "ann", uid)
        assert first["state"] == "forwarding"
        assert first["owner"] == "ann"
        assert first["role"] == "PROD"
        assert first["targets"] == [str(target), str(target)]
        assert [x["target"] for x in first["listeners"]] == [str(target), str(target)]
        assert all(x["bytes_in"] == 0 and x["bytes_out"] == 0 for x in first["listeners"])
        ports = [address(x["listener"]).port for x in first["listeners"]]
        assert all(PORTS[0] <= p <= PORTS[1] for p in ports)

        # Bytes through the first listener to the echo target and back: counted there.
        assert roundtrip(address(first["listeners"][0]["listener"]), 2_000_000)
        fed = session_of(node, "ann", uid)
        one, two = fed["listeners"]
        assert one["connections"] == 1
        assert one["bytes_in"] == one["bytes_out"] == 2_000_000
        assert two["bytes_in"] == 0
        assert fed["bytes_in"] == 2_000_000
        # A rate is the bytes between two readings over the time between them.
        assert roundtrip(address(one["listener"]), 1_000_000)

        def rated() -> float:
            rate: float | None = session_of(node, "ann", uid)["listeners"][0]["rate_in"]
            return rate or 0.0

        assert eventually(rated, "a rate in") > 0

        # The page draws the same, without JavaScript.
        page = httpx.get(f"{node.url}/streams", headers=node.auth("ann"))
        assert page.status_code == 200
        assert f'<tbody data-key="{uid}">' in page.text
        assert f"<code>{one['listener']}</code>" in page.text
        assert f"<code>{target}</code>" in page.text
        assert 'data-value="3000000"' in page.text
        assert RELOAD in page.text
        assert f'action="{node.url}/streams/{uid}/release"' in page.text
        assert 'src="/static/stream.js"' in page.text


def test_release_over_http_stops_the_forwarder_and_frees_the_ports(node: Node) -> None:
    with server("echo") as target:
        uid = open_session(node, "ann", target)
        ports = [address(x["listener"]).port for x in session_of(node, "ann", uid)["listeners"]]
        pid = node.serving.sessions.dataserver.pid(uid)  # type: ignore[attr-defined]
        assert pid is not None
        assert psutil.pid_exists(pid)
        assert all(listening(p) for p in ports)
        assert node.serving.sessions.pool.reserved == 2

        answer = httpx.post(
            f"{node.url}/api/stream/sessions/{uid}/release", headers=node.auth("ann")
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["ports"] == ports
        assert answer.json()["ports_free"] == PORTS[1] - PORTS[0] + 1
        assert node.serving.sessions.pool.reserved == 0
        assert not any(listening(p) for p in ports)
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
        assert listed(node, "ann")["sessions"] == []
        # The control server agrees: its owner's gRPC view has no session left.
        gone = run(_sessions(node.control, node.tokens["ann"]))
        assert gone == []
        again = httpx.post(
            f"{node.url}/api/stream/sessions/{uid}/release", headers=node.auth("ann")
        )
        assert again.status_code == 404
        assert uid in again.json()["detail"]


async def _sessions(gateway: client.Gateway, token: str) -> list[str]:
    async with client.Control(gateway, token) as control:
        return [s.uid for s in await control.sessions()]


def test_the_pages_release_form_works_without_javascript(node: Node) -> None:
    with server("echo") as target:
        uid = open_session(node, "ann", target, num_conn=1)
        answer = httpx.post(
            f"{node.url}/streams/{uid}/release",
            headers={**node.auth("ann"), "Sec-Fetch-Site": "same-origin"},
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == f"{node.url}/streams"
        assert node.serving.sessions.pool.reserved == 0
        page = httpx.get(f"{node.url}/streams", headers=node.auth("ann")).text
        assert uid not in page
        assert "No session on this gateway made with your identity" in page
        assert RELOAD not in page


def test_a_user_sees_their_own_sessions_and_an_administrator_all(node: Node) -> None:
    with server("echo") as target:
        anns = open_session(node, "ann", target, num_conn=1)
        bobs = open_session(node, "bob", target, num_conn=1)
        assert [s["uid"] for s in listed(node, "ann")["sessions"]] == [anns]
        assert [s["uid"] for s in listed(node, "bob")["sessions"]] == [bobs]
        everyone = listed(node, "admin")
        assert everyone["viewer"] == {"user": "admin", "all": True}
        assert {s["uid"]: s["owner"] for s in everyone["sessions"]} == {
            anns: "ann",
            bobs: "bob",
        }
        assert everyone["gateway"]["sessions"] == 2
        page = httpx.get(f"{node.url}/streams", headers=node.auth("bob")).text
        assert bobs in page
        assert anns not in page
        # An administrator releases anyone's session, as its owner would.
        answer = httpx.post(
            f"{node.url}/api/stream/sessions/{bobs}/release", headers=node.auth("admin")
        )
        assert answer.status_code == 200, answer.text
        assert [s["uid"] for s in listed(node, "admin")["sessions"]] == [anns]


def test_hostile_and_unauthenticated_requests_are_refused(node: Node) -> None:
    with server("echo") as target:
        uid = open_session(node, "ann", target, num_conn=1)
        release = f"{node.url}/api/stream/sessions/{uid}/release"
        # No credentials: 401 with a challenge, on the page, the JSON and release.
        for method, url in (
            ("GET", f"{node.url}/streams"),
            ("GET", f"{node.url}/api/stream/sessions"),
            ("POST", release),
            ("POST", f"{node.url}/streams/{uid}/release"),
        ):
            answer = httpx.request(method, url)
            assert answer.status_code == 401, (url, answer.text)
            assert "WWW-Authenticate" in answer.headers
        # A token without scope stream.
        answer = httpx.get(f"{node.url}/api/stream/sessions", headers=node.auth("carol"))
        assert answer.status_code == 403
        assert "stream" in answer.json()["detail"]
        # Another user's session does not exist for them: not shown, not released.
        for answer in (
            httpx.post(release, headers=node.auth("bob")),
            httpx.get(f"{node.url}/api/stream/sessions/{uid}", headers=node.auth("bob")),
        ):
            assert answer.status_code == 404, answer.text
            assert uid in answer.json()["detail"]
        # An unknown uid and a malformed one, named.
        unknown = httpx.post(
            f"{node.url}/api/stream/sessions/no-such-session/release", headers=node.auth("ann")
        )
        assert unknown.status_code == 404
        assert "no-such-session" in unknown.json()["detail"]
        bad = httpx.post(
            f"{node.url}/api/stream/sessions/{'x' * 200}/release", headers=node.auth("ann")
        )
        assert bad.status_code == 400
        assert "uid" in bad.json()["detail"]
        marked = httpx.get(f"{node.url}/api/stream/sessions/%3Cscript%3E", headers=node.auth("ann"))
        assert marked.status_code == 400
        assert marked.headers["content-type"].startswith("application/problem+json")
        # A form of another site posting with the user's credentials.
        forged = httpx.post(release, headers={**node.auth("ann"), "Sec-Fetch-Site": "cross-site"})
        assert forged.status_code == 403
        assert "another site" in forged.json()["detail"]
        # After all that, ann's session is still there and still forwards.
        mine = session_of(node, "ann", uid)
        assert mine["state"] == "forwarding"
        assert roundtrip(address(mine["listeners"][0]["listener"]), 100_000)
        assert node.serving.sessions.pool.reserved == 1


def test_a_session_whose_forwarder_died_shows_failed(node: Node) -> None:
    with server("echo") as target:
        uid = open_session(node, "ann", target, num_conn=1)
        pid = node.serving.sessions.dataserver.pid(uid)  # type: ignore[attr-defined]
        os.kill(pid, signal.SIGKILL)
        failed = eventually(
            lambda: (s := session_of(node, "ann", uid))["state"] == "failed" and s,
            "the session failed",
        )
        assert "not running" in failed["reason"]
        page = httpx.get(f"{node.url}/streams", headers=node.auth("ann")).text
        assert "state-failed" in page
        # Released all the same: its ports back.
        answer = httpx.post(
            f"{node.url}/api/stream/sessions/{uid}/release", headers=node.auth("ann")
        )
        assert answer.status_code == 200
        assert node.serving.sessions.pool.reserved == 0


def test_without_a_control_server_in_the_process_the_page_says_so(tmp_path: Path) -> None:
    with stream_node(tmp_path, serve=False) as node:
        assert node.gateway.serving is None
        home = httpx.get(f"{node.url}/").text
        assert '<a href="/streams">Streams</a>' in home
        page = httpx.get(f"{node.url}/streams", headers=node.auth("ann"))
        assert page.status_code == 200
        assert "does not run in this process" in page.text
        assert "serve_in_up" in page.text
        assert 'src="/static/stream.js"' not in page.text
        doc = listed(node, "ann")
        assert doc["serving"] is False
        assert "serve_in_up" in doc["detail"]
        answer = httpx.post(
            f"{node.url}/api/stream/sessions/some-uid/release", headers=node.auth("ann")
        )
        assert answer.status_code == 404
        assert "does not run in this process" in answer.json()["detail"]
