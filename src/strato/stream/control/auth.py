"""Who calls: the token from the call's ``authorization`` metadata (bare, as SciStream's
client sends it, or ``Bearer ...``), checked as a strato API token with scope ``stream``,
or, when ``stream.introspection_url`` is set, any other token by OAuth2 token
introspection (:mod:`strato.stream.control.introspection`, e.g. Globus Auth). strato
tokens (``strato_...``) are never sent to the introspection endpoint. The database is
asked on a worker thread, never on the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from strato.auth import TOKEN_PREFIX, IdentityStore, Scope
from strato.errors import Unauthorized
from strato.stream.model.errors import Forbidden, Unauthenticated

if TYPE_CHECKING:
    from strato.stream.control.introspection import Introspector
    from strato.stream.settings import StreamSettings

# Token -> the owner's identity; raises Unauthenticated or Forbidden.
Authenticator = Callable[[str], Awaitable[str]]

MAX_TOKEN = 4096


def token_from(metadata: Iterable[tuple[str, Any]] | None) -> str:
    for key, value in metadata or ():
        if key.lower() == "authorization":
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            text = text.strip()
            if text[:7].lower() == "bearer ":
                text = text[7:].strip()
            if not text:
                break
            if len(text) > MAX_TOKEN:
                raise Unauthenticated("the token in 'authorization' is too long")
            return text
    raise Unauthenticated("no token: send it in the 'authorization' metadata")


def strato_tokens(identities: IdentityStore) -> Authenticator:
    async def authenticate(token: str) -> str:
        principal = identities.cached_token(token)
        if principal is None:
            try:
                principal = await asyncio.to_thread(identities.authenticate_token, token)
            except Unauthorized as exc:
                raise Unauthenticated(exc.detail) from None
        if principal.user is None:
            raise Unauthenticated("the token names no user")
        if not principal.allows(Scope.STREAM):
            raise Forbidden(f"the token of {principal.user!r} lacks the scope 'stream'")
        return principal.user

    return authenticate


def either(strato: Authenticator, introspect: Introspector | None) -> Authenticator:
    """strato tokens to strato, every other token to the introspection endpoint (when one
    is configured; else strato refuses it as unknown)."""
    if introspect is None:
        return strato

    async def authenticate(token: str) -> str:
        if token.startswith(TOKEN_PREFIX):
            return await strato(token)
        return await introspect(token)

    return authenticate


def introspector(settings: StreamSettings) -> Introspector | None:
    """The introspection the settings ask for, or None; close it with ``aclose``."""
    if not settings.introspection_url:
        return None
    from strato.stream.control.introspection import IntrospectionConfig, Introspector

    secret = settings.introspection_client_secret
    return Introspector(
        IntrospectionConfig(
            url=settings.introspection_url,
            client_id=settings.introspection_client_id or "",
            client_secret=secret.get_secret_value() if secret is not None else "",
            scope=settings.introspection_scope,
            audience=settings.introspection_audience,
            identity=settings.introspection_identity,
            cache_seconds=settings.introspection_cache_seconds,
            cache_size=settings.introspection_cache_size,
            timeout=settings.introspection_timeout,
        )
    )
