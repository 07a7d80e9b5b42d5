"""Who calls: the token from the call's ``authorization`` metadata (bare, as SciStream's
client sends it, or ``Bearer ...``), checked as a strato API token with scope ``stream``.
The database is asked on a worker thread, never on the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from strato.auth import IdentityStore, Scope
from strato.errors import Unauthorized
from strato.stream.model.errors import Forbidden, Unauthenticated

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
