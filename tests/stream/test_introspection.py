"""OAuth2 token introspection (RFC 7662) on a real control server: an introspection
endpoint (a small HTTP server on loopback, answering as Globus Auth does) and gRPC calls
with tokens that are not strato tokens. Active tokens with the required scope are let in
as ``oauth2:<sub>``; inactive, expired, out-of-scope ones are refused with the status
that fits; answers are cached (bounded) and shared between concurrent calls; strato tokens
never reach the endpoint; an endpoint that fails is UNAVAILABLE, and cached nothing."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from strato.auth import Scope
from strato.context import Context
from strato.stream import client
from strato.stream.control.auth import either, introspector, strato_tokens
from strato.stream.control.introspection import Introspector
from strato.stream.control.server import ControlServer, start
from strato.stream.dataserver.builtin import BuiltinDataServer
from strato.stream.settings import StreamSettings
from tests.stream.support import server

pytestmark = pytest.mark.asyncio
SCOPE = "https://auth.globus.org/scopes/c42c0dac-0a52-408e-a04f-5d31bfe0aef8/scistream"
CLIENT, SECRET = "gateway-client", "gateway-secret"


@dataclass
class Endpoint:
    """An introspection endpoint: ``tokens`` maps a token to its answer's claims."""

    url: str = ""
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)  # the tokens posted, in order
    failing: int = 0  # answer this HTTP status instead, when set
    delay: float = 0.0


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    state = Endpoint()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            form = urllib.parse.parse_qs(body.decode())
            token = form.get("token", [""])[0]
            state.asked.append(token)
            time.sleep(state.delay)
            basic = base64.b64encode(f"{CLIENT}:{SECRET}".encode()).decode()
            if state.failing:
                self._answer(state.failing, {"error": "server_error"})
            elif self.headers.get("Authorization") != f"Basic {basic}":
                self._answer(401, {"error": "invalid_client"})
            else:
                self._answer(200, state.tokens.get(token, {"active": False}))

        def _answer(self, status: int, doc: dict[str, Any]) -> None:
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v2/oauth2/token/introspect"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def claims(sub: str, scope: str = SCOPE, **more: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "active": True,
        "scope": f"openid {scope}",
        "sub": sub,
        "username": f"{sub[:5]}@globusid.org",
        "client_id": "s2uc",
        "exp": now + 3600,
        "iat": now,
        **more,
    }


@dataclass
class Gateway:
    control: ControlServer
    oauth: Introspector
    address: client.Gateway


@pytest_asyncio.fixture
async def gateway(context: Context, endpoint: Endpoint, tmp_path: Path) -> AsyncIterator[Any]:
    made: list[Gateway] = []

    async def go(**extra: Any) -> Gateway:
        values: dict[str, Any] = {
            "listen": "127.0.0.1:0",
            "port_first": 62600,
            "port_last": 62609,
            "insecure": True,
            "leg_tls": False,
            "introspection_url": endpoint.url,
            "introspection_client_id": CLIENT,
            "introspection_client_secret": SECRET,
            "introspection_scope": SCOPE,
        }
        settings = StreamSettings(**{**values, **extra})
        oauth = introspector(settings)
        assert oauth is not None
        authenticate = either(strato_tokens(context.identities), oauth)
        # Each gateway its own state directory, as each control server needs.
        cs = await start(settings, BuiltinDataServer(tmp_path / f"ds{len(made)}"), authenticate)
        gw = Gateway(cs, oauth, client.Gateway(f"127.0.0.1:{cs.port}", insecure=True))
        made.append(gw)
        return gw

    yield go
    for gw in made:
        await gw.control.stop(0)
        await gw.oauth.aclose()


async def sessions(gw: Gateway, token: str) -> list[Any]:
    async with client.Control(gw.address, token) as c:
        return await c.sessions()


async def refused(gw: Gateway, token: str) -> str:
    with pytest.raises(client.StreamClientError) as caught:
        await sessions(gw, token)
    return str(caught.value)


async def test_an_active_token_with_the_scope_streams_as_its_subject(
    gateway: Any, endpoint: Endpoint
) -> None:
    gw = await gateway()
    endpoint.tokens["globus-alice"] = claims("b0b4d4a0-alice")
    with server("echo") as app:
        half = await client.inbound_request(gw.address, "globus-alice", "oa-1", [str(app)], 1)
        assert half.targets == [str(app)]
        (listed,) = await sessions(gw, "globus-alice")
        assert listed.uid == "oa-1"
        assert listed.owner == "oauth2:b0b4d4a0-alice"
        # Another subject of the same authorization server may not touch it.
        endpoint.tokens["globus-bob"] = claims("c1c2-bob")
        async with client.Control(gw.address, "globus-bob") as bob:
            with pytest.raises(client.StreamClientError, match="PERMISSION_DENIED"):
                await bob.release("oa-1")
        await client.release("oa-1", [gw.address], "globus-alice")
    # Five calls of alice's, one request to the endpoint: the answer was reused.
    assert endpoint.asked.count("globus-alice") == 1
    assert gw.control.sessions.pool.reserved == 0


async def test_refusals_name_what_is_wrong(gateway: Any, endpoint: Endpoint) -> None:
    gw = await gateway()
    endpoint.tokens["no-scope"] = claims("s1", scope="urn:globus:auth:scope:transfer.api")
    endpoint.tokens["expired"] = claims("s2", exp=int(time.time()) - 10)
    endpoint.tokens["no-subject"] = {"active": True, "scope": SCOPE}
    assert "UNAUTHENTICATED" in await refused(gw, "unknown-to-it")
    assert "not active" in await refused(gw, "unknown-to-it")
    said = await refused(gw, "no-scope")
    assert "PERMISSION_DENIED" in said
    assert SCOPE in said
    assert "has expired" in await refused(gw, "expired")
    assert "names no subject" in await refused(gw, "no-subject")


async def test_strato_tokens_never_reach_the_endpoint(
    gateway: Any, endpoint: Endpoint, context: Context
) -> None:
    gw = await gateway()
    context.identities.create_user("carol", scopes={Scope.STREAM})
    strato = context.identities.create_token("carol", {Scope.STREAM}).secret
    assert await sessions(gw, strato) == []
    assert "UNAUTHENTICATED" in await refused(gw, "strato_not-a-real-one")
    assert endpoint.asked == []


async def test_a_failing_endpoint_is_unavailable_and_nothing_is_cached(
    gateway: Any, endpoint: Endpoint
) -> None:
    gw = await gateway()
    endpoint.tokens["globus-dave"] = claims("dave")
    endpoint.failing = 500
    said = await refused(gw, "globus-dave")
    assert "UNAVAILABLE" in said
    assert "HTTP 500" in said
    endpoint.failing = 0
    assert await sessions(gw, "globus-dave") == []  # asked again, and let in

    wrong = await gateway(introspection_client_secret="not-the-secret")
    said = await refused(wrong, "globus-dave")
    assert "refused this gateway's client credentials" in said

    gone = await gateway(introspection_url="http://127.0.0.1:9/introspect", introspection_timeout=2)
    said = await refused(gone, "globus-dave")
    assert "UNAVAILABLE" in said
    assert "could not be reached" in said


async def test_the_cache_is_bounded_expires_and_shares_one_request(
    gateway: Any, endpoint: Endpoint
) -> None:
    gw = await gateway(introspection_cache_size=2, introspection_cache_seconds=30)
    for name in ("t1", "t2", "t3"):
        endpoint.tokens[name] = claims(name)
        await sessions(gw, name)
    await sessions(gw, "t3")
    await sessions(gw, "t1")  # pushed out by t3: asked again
    assert endpoint.asked == ["t1", "t2", "t3", "t1"]

    # Ten calls at once with a new token: one request.
    endpoint.tokens["burst"] = claims("burst")
    endpoint.delay = 0.3
    await asyncio.gather(*(sessions(gw, "burst") for _ in range(10)))
    assert endpoint.asked.count("burst") == 1

    endpoint.delay = 0.0
    short = await gateway(introspection_cache_seconds=0.2)
    await sessions(short, "t2")
    await asyncio.sleep(0.3)
    await sessions(short, "t2")  # the answer is past its time: asked again
    assert endpoint.asked.count("t2") == 3


async def test_settings_refuse_a_cleartext_endpoint_and_missing_credentials() -> None:
    with pytest.raises(ValueError, match="https://"):
        StreamSettings(
            introspection_url="http://auth.example.org/introspect",
            introspection_client_id=CLIENT,
            introspection_client_secret=SECRET,
        )
    with pytest.raises(ValueError, match="introspection_client_secret"):
        StreamSettings(introspection_url="https://auth.globus.org/v2/oauth2/token/introspect")
    ok = StreamSettings(
        introspection_url="https://auth.globus.org/v2/oauth2/token/introspect",
        introspection_client_id=CLIENT,
        introspection_client_secret=SECRET,
    )
    assert SECRET not in repr(ok)
