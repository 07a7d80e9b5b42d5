"""HTTP authentication: Bearer tokens and Basic (user + password or user + token),
with per-route scope checks as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)

from strato.auth import ANONYMOUS, TOKEN_PREFIX, IdentityStore, Principal, Scope
from strato.errors import Forbidden, Unauthorized
from strato.http.signin_limits import SignInLimits
from strato.settings import AuthSettings

_bearer = HTTPBearer(auto_error=False, description="An API token from `strato token create`.")
_basic = HTTPBasic(
    auto_error=False, description="User name with its password or with one of its API tokens."
)


class Authenticator:
    def __init__(self, identities: IdentityStore, settings: AuthSettings) -> None:
        self.identities = identities
        self.settings = settings
        self.limits = SignInLimits(settings)

    def principal(
        self,
        bearer: HTTPAuthorizationCredentials | None,
        basic: HTTPBasicCredentials | None,
        address: str | None = None,
    ) -> Principal | None:
        if bearer is not None:
            return self.identities.authenticate_token(bearer.credentials)
        if basic is None:
            return None
        if basic.password.startswith(TOKEN_PREFIX):
            # A token costs one SHA-256 and guessing one is hopeless: not limited.
            return self.identities.authenticate_basic(basic.username, basic.password)
        # Before the password check, so that a refused attempt costs no argon2 work.
        self.limits.check(basic.username, address)
        try:
            return self.identities.authenticate_basic(basic.username, basic.password)
        except Unauthorized:
            self.limits.failed(basic.username, address)
            raise

    async def checked(
        self,
        bearer: HTTPAuthorizationCredentials | None,
        basic: HTTPBasicCredentials | None,
        address: str | None,
    ) -> Principal | None:
        """:meth:`principal`, on the event loop for a token checked lately (no database,
        no hop to a thread: most requests of a client), else in the threadpool: the
        database is blocking and password checks are slow on purpose (argon2)."""
        if bearer is not None:
            cached = self.identities.cached_token(bearer.credentials)
            if cached is not None:
                return cached
        elif basic is None:
            return None
        return await run_in_threadpool(self.principal, bearer, basic, address)

    def require(self, scope: Scope) -> Callable[..., Awaitable[Principal]]:
        """A dependency that answers 401/403 unless the caller holds ``scope``."""
        anonymous_ok = scope is Scope.READ and self.settings.anonymous_read

        async def dependency(
            request: Request,
            bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
            basic: HTTPBasicCredentials | None = Depends(_basic),
        ) -> Principal:
            principal = await self.checked(bearer, basic, _address(request))
            if principal is None:
                if anonymous_ok:
                    return ANONYMOUS
                raise Unauthorized(f"this request needs credentials with scope {scope.value!r}")
            if not principal.allows(scope):
                raise Forbidden(
                    f"scope {scope.value!r} is needed; the credentials carry "
                    f"{', '.join(sorted(principal.scopes))}"
                )
            return principal

        return dependency

    def authenticated(self) -> Callable[..., Awaitable[Principal]]:
        """A dependency for routes about the caller itself: any valid credentials."""

        async def dependency(
            request: Request,
            bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
            basic: HTTPBasicCredentials | None = Depends(_basic),
        ) -> Principal:
            principal = await self.checked(bearer, basic, _address(request))
            if principal is None:
                raise Unauthorized("this request needs credentials")
            return principal

        return dependency


def _address(request: Request) -> str | None:
    # The peer as uvicorn reports it: behind a trusted proxy (FORWARDED_ALLOW_IPS,
    # loopback by default) the client's own address from X-Forwarded-For.
    return request.client.host if request.client is not None else None
