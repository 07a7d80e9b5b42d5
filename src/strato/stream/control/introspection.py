"""Tokens of an OAuth2 authorization server, checked by token introspection (RFC 7662), as
SciStream gateways accept Globus Auth tokens: the control server posts the token to the
introspection endpoint with its own client credentials (HTTP Basic) and takes the answer:
``active`` must be true, the answer's ``scope`` must hold the required scope, ``exp`` and
``nbf`` must allow now, ``aud`` must name the configured audience if one is set. The
caller's identity is ``oauth2:<sub>`` (or ``<username>``): never the same as a strato
user's, so neither can touch the other's sessions.

Answers are cached briefly, keyed by the token's SHA-256 (the token itself is not kept),
at most ``cache_size`` of them, least recently used out first; a positive answer is not
trusted past the token's ``exp``. Concurrent calls with one token share one request. An
endpoint that cannot be reached or answers nonsense is UNAVAILABLE and nothing is cached.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import httpx

from strato.stream.model.errors import ConnError, Forbidden, StreamError, Unauthenticated

PREFIX = "oauth2:"
# Answers larger than this are not an introspection answer.
MAX_ANSWER = 64 * 1024


@dataclass(frozen=True)
class IntrospectionConfig:
    url: str
    client_id: str
    client_secret: str
    scope: str | None = None  # required in the answer's scope; None: any
    audience: str | None = None  # required in the answer's aud; None: not checked
    identity: str = "sub"  # or "username": the claim that names the caller
    cache_seconds: float = 60.0
    cache_size: int = 10_000
    timeout: float = 5.0


class Introspector:
    """An :data:`~strato.stream.control.auth.Authenticator` for tokens an OAuth2 server
    issued: ``await introspector(token)`` is the caller's identity."""

    def __init__(self, config: IntrospectionConfig) -> None:
        self.config = config
        self._cache: OrderedDict[bytes, tuple[float, str | StreamError]] = OrderedDict()
        self._asking: dict[bytes, asyncio.Future[str | StreamError]] = {}
        self._http: httpx.AsyncClient | None = None
        self.requests = 0  # made to the endpoint (for status pages and tests)

    async def __call__(self, token: str) -> str:
        key = hashlib.sha256(token.encode()).digest()
        found = self._cached(key)
        if found is None:
            found = await self._ask_once(key, token)
        if isinstance(found, StreamError):
            raise type(found)(found.message)
        return found

    def _cached(self, key: bytes) -> str | StreamError | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        until, answer = entry
        if until <= time.monotonic():
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return answer

    async def _ask_once(self, key: bytes, token: str) -> str | StreamError:
        """One request per token at a time: callers arriving meanwhile wait for it."""
        waiting = self._asking.get(key)
        if waiting is not None:
            return await asyncio.shield(waiting)
        future: asyncio.Future[str | StreamError] = asyncio.get_running_loop().create_future()
        self._asking[key] = future
        try:
            answer = await self._ask(token)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a failure nobody else waited for is not logged
            raise
        finally:
            del self._asking[key]
        future.set_result(answer[1])
        self._remember(key, *answer)
        return answer[1]

    def _remember(self, key: bytes, until: float, answer: str | StreamError) -> None:
        if until <= time.monotonic() or self.config.cache_size == 0:
            return
        self._cache[key] = (until, answer)
        self._cache.move_to_end(key)
        while len(self._cache) > self.config.cache_size:
            self._cache.popitem(last=False)

    async def _ask(self, token: str) -> tuple[float, str | StreamError]:
        """(monotonic time until which the answer holds, the identity or the refusal)."""
        c = self.config
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=c.timeout, follow_redirects=False)
        self.requests += 1
        try:
            response = await self._http.post(
                c.url,
                data={"token": token, "token_type_hint": "access_token"},
                auth=(c.client_id, c.client_secret),
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as e:
            raise ConnError(
                f"the token introspection endpoint could not be reached: {type(e).__name__}"
                f"{': ' + str(e) if str(e) else ''}"
            ) from None
        if response.status_code in (401, 403):
            raise ConnError(
                f"the token introspection endpoint refused this gateway's client "
                f"credentials (HTTP {response.status_code}): check "
                "stream.introspection_client_id and _secret"
            )
        if response.status_code != 200:
            raise ConnError(
                f"the token introspection endpoint answered HTTP {response.status_code}"
            )
        claims = _claims(response)
        return self._judge(claims)

    def _judge(self, claims: dict[str, Any]) -> tuple[float, str | StreamError]:
        c = self.config
        now_wall, now = time.time(), time.monotonic()
        until = now + c.cache_seconds
        if claims.get("active") is not True:
            return until, Unauthenticated(
                "the token is not active (expired, revoked, or not issued for this gateway)"
            )
        exp = claims.get("exp")
        if isinstance(exp, int | float):
            if exp <= now_wall:
                return until, Unauthenticated("the token has expired")
            until = min(until, now + (exp - now_wall))
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf > now_wall:
            return now, Unauthenticated("the token is not valid yet (nbf)")
        if c.scope is not None:
            granted = str(claims.get("scope") or "").split()
            if c.scope not in granted:
                return until, Forbidden(f"the token lacks the scope {c.scope!r}")
        if c.audience is not None:
            aud = claims.get("aud")
            audiences = aud if isinstance(aud, list) else [aud]
            if c.audience not in audiences:
                return until, Forbidden(f"the token is not meant for {c.audience!r} (aud)")
        other = "username" if c.identity == "sub" else "sub"
        name = claims.get(c.identity) or claims.get(other)
        if not isinstance(name, str) or not name.strip():
            return until, Unauthenticated("the introspection answer names no subject")
        return until, PREFIX + name.strip()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def _claims(response: httpx.Response) -> dict[str, Any]:
    if len(response.content) > MAX_ANSWER:
        raise ConnError("the token introspection endpoint's answer is too large")
    try:
        claims = response.json()
    except ValueError:
        raise ConnError("the token introspection endpoint's answer is not JSON") from None
    if not isinstance(claims, dict):
        raise ConnError("the token introspection endpoint's answer is not a JSON object")
    return claims
