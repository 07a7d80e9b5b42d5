"""Identity API: who am I, my tokens, and (admin) users."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from strato.auth import IdentityStore, Principal, Scope, TokenInfo, UserInfo, parse_duration
from strato.errors import Forbidden
from strato.http.security import Authenticator
from strato.settings import AuthSettings


class Me(BaseModel):
    user: str
    scopes: list[Scope]
    token_id: str | None


class TokenOut(BaseModel):
    id: str
    user: str
    name: str
    scopes: list[Scope]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    state: str
    parent_id: str | None = Field(
        None, description="The token that created this one; revoking it revokes this one."
    )

    @classmethod
    def of(cls, t: TokenInfo) -> TokenOut:
        return cls(
            id=t.id,
            user=t.user,
            name=t.name,
            scopes=sorted(t.scopes),
            created_at=t.created_at,
            expires_at=t.expires_at,
            last_used_at=t.last_used_at,
            state=t.state,
            parent_id=t.parent_id,
        )


class TokenCreated(TokenOut):
    token: str = Field(description="The secret; shown only in this answer.")


class TokenRequest(BaseModel):
    name: str = Field("", max_length=128)
    scopes: list[Scope] = Field(min_length=1)
    expires: str | None = Field(None, description="30d, 12h, 90m or never", max_length=16)


class UserOut(BaseModel):
    name: str
    scopes: list[Scope]
    is_active: bool
    created_at: datetime
    has_password: bool

    @classmethod
    def of(cls, u: UserInfo) -> UserOut:
        return cls(
            name=u.name,
            scopes=sorted(u.scopes),
            is_active=u.is_active,
            created_at=u.created_at,
            has_password=u.has_password,
        )


class UserRequest(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str | None = Field(None, min_length=8, max_length=1024)
    scopes: list[Scope] = Field(default_factory=lambda: [Scope.READ], min_length=1)


def make_identity_router(
    identities: IdentityStore, auth: Authenticator, settings: AuthSettings
) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["identity"])
    me_dep = Depends(auth.authenticated())
    admin_dep = Depends(auth.require(Scope.ADMIN))

    @router.get("/me", summary="The caller's identity and scopes")
    def me(principal: Principal = me_dep) -> Me:
        assert principal.user is not None
        return Me(user=principal.user, scopes=sorted(principal.scopes), token_id=principal.token_id)

    @router.get("/tokens", summary="List the caller's tokens (admins: any user's)")
    def list_tokens(
        principal: Principal = me_dep, user: str | None = Query(None, max_length=64)
    ) -> list[TokenOut]:
        target = _target_user(principal, user)
        return [TokenOut.of(t) for t in identities.list_tokens(target)]

    @router.post("/tokens", status_code=201, summary="Create a token for the caller")
    def create_token(body: TokenRequest, principal: Principal = me_dep) -> TokenCreated:
        assert principal.user is not None
        wanted = frozenset(body.scopes)
        missing = [s.value for s in wanted if not principal.allows(s)]
        if missing:
            raise Forbidden(f"cannot grant scope(s) {', '.join(missing)} the credentials lack")
        expires = parse_duration(body.expires or settings.token_default_expiry)
        # A token minted with a token is bound to it: no longer life, no wider scopes,
        # revoked with it. One minted with a password stands alone.
        issued = identities.create_token(
            principal.user,
            wanted,
            expires_in=expires,
            name=body.name,
            parent=principal.token_id,
            expiry_asked=bool(body.expires),
        )
        return TokenCreated(**TokenOut.of(issued.info).model_dump(), token=issued.secret)

    @router.delete("/tokens/{token_id}", summary="Revoke one of the caller's tokens")
    def revoke_token(token_id: str, principal: Principal = me_dep) -> TokenOut:
        owner = None if principal.allows(Scope.ADMIN) else principal.user
        return TokenOut.of(identities.revoke_token(token_id, owner=owner).info)

    @router.get("/users", summary="List users (admin)")
    def list_users(_: Principal = admin_dep) -> list[UserOut]:
        return [UserOut.of(u) for u in identities.list_users()]

    @router.post("/users", status_code=201, summary="Create a user (admin)")
    def create_user(body: UserRequest, _: Principal = admin_dep) -> UserOut:
        return UserOut.of(
            identities.create_user(body.name, password=body.password, scopes=body.scopes)
        )

    return router


def _target_user(principal: Principal, user: str | None) -> str:
    assert principal.user is not None
    if user is None or user == principal.user:
        return principal.user
    if not principal.allows(Scope.ADMIN):
        raise Forbidden("only admins may list another user's tokens")
    return user
