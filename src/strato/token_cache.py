"""Tokens this process has checked lately, so that a client's next request with the same
token is authenticated without a database query.

A request with a token otherwise costs a join of ``api_tokens`` and ``users`` (0.5-1.2 ms
in the app, measured by ``bench/processes.py``), which on the short requests of a job's
life (submit, status, results) was the largest part of the server's work. An entry is
kept for ``auth.token_cache_seconds`` (0 switches the cache off). Revoking a token or
disabling a user through this process forgets its entries at once; another process of
the same deployment (a second server, the command line) is heard of when the entry ages
out, so ``token_cache_seconds`` is how long a token revoked elsewhere may still work
here. Expiry is checked on every use, cached or not.

Only successful checks are kept: a wrong token always meets the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from strato.caching import LRU

if TYPE_CHECKING:
    from strato.auth import Principal

# Enough for every client of a busy node; an entry is a few hundred bytes.
MAX_TOKENS = 4096


@dataclass
class CachedToken:
    principal: Principal
    expires_at: datetime | None
    last_used_at: datetime | None  # as last written to the database


class TokenCache:
    def __init__(self, seconds: float, maxsize: int = MAX_TOKENS) -> None:
        self.seconds = seconds
        self._entries: LRU[str, CachedToken] | None = (
            LRU(maxsize, ttl=seconds) if seconds > 0 else None
        )

    @property
    def enabled(self) -> bool:
        return self._entries is not None

    def get(self, token_hash: str) -> CachedToken | None:
        return None if self._entries is None else self._entries.get(token_hash)

    def put(self, token_hash: str, entry: CachedToken) -> None:
        if self._entries is not None:
            self._entries.put(token_hash, entry)

    def forget_tokens(self, token_ids: set[str]) -> None:
        if self._entries is not None:
            self._entries.remove_if(lambda entry: entry.principal.token_id in token_ids)

    def forget_user(self, user: str) -> None:
        if self._entries is not None:
            self._entries.remove_if(lambda entry: entry.principal.user == user)
