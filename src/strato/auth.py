"""Users, API tokens and scopes: the identity core, free of HTTP.

Tokens are 32 random bytes from :mod:`secrets`, shown once and stored as a
SHA-256 digest (they carry full entropy, so a slow hash adds nothing and would
cost every request). Passwords are hashed with argon2id.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Boolean, ForeignKey, Integer, String, or_, select, update
from sqlalchemy.exc import InternalError, OperationalError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from strato.db import Base, UTCDateTime, begin_write, dialect_of, utcnow
from strato.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from strato.token_cache import CachedToken, TokenCache

log = logging.getLogger(__name__)

TOKEN_PREFIX = "strato_"  # noqa: S105  (a marker, not a secret)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_DURATION = re.compile(r"^(\d+)([dhm])$")
MIN_PASSWORD = 8
# Writing last_used_at on every request would turn reads into writes.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


class Scope(StrEnum):
    READ = "read"
    PUBLISH = "publish"
    RUN = "run"
    # Executing processes (OGC API - Processes) and managing one's own jobs.
    PROCESS = "process"
    STREAM = "stream"
    ADMIN = "admin"


ALL_SCOPES = frozenset(Scope)


def parse_scopes(text: str | Iterable[str]) -> frozenset[Scope]:
    items = text.split(",") if isinstance(text, str) else list(text)
    names = [s.strip() for s in items if s.strip()]
    if not names:
        raise InvalidInput(f"no scope given; valid scopes: {', '.join(Scope)}")
    unknown = [n for n in names if n not in Scope.__members__.values()]
    if unknown:
        raise InvalidInput(
            f"unknown scope {', '.join(map(repr, unknown))}; valid scopes: {', '.join(Scope)}"
        )
    return frozenset(Scope(n) for n in names)


def format_scopes(scopes: Iterable[Scope]) -> str:
    return ",".join(s.value for s in Scope if s in set(scopes))


def parse_duration(text: str) -> timedelta | None:
    """``30d``, ``12h``, ``90m`` or ``never`` (None)."""
    text = text.strip().lower()
    if text in ("never", "none", ""):
        return None
    m = _DURATION.match(text)
    if not m or int(m.group(1)) == 0:
        raise InvalidInput(
            f"invalid duration {text!r}: use a positive number with d, h or m "
            "(30d, 12h, 90m) or 'never'"
        )
    n, unit = int(m.group(1)), m.group(2)
    return {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[unit]


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    scopes: Mapped[str] = mapped_column(String(128))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The token whose holder created this one, if any: revoking it revokes this one.
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True
    )


@dataclass(frozen=True)
class Principal:
    """Who is calling, and what they may do."""

    user: str | None
    scopes: frozenset[Scope]
    token_id: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.user is None

    def allows(self, scope: Scope) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes


ANONYMOUS = Principal(user=None, scopes=frozenset({Scope.READ}))


@dataclass(frozen=True)
class UserInfo:
    name: str
    scopes: frozenset[Scope]
    is_active: bool
    created_at: datetime
    has_password: bool


@dataclass(frozen=True)
class TokenInfo:
    id: str
    user: str
    name: str
    scopes: frozenset[Scope]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    parent_id: str | None = None

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= utcnow():
            return "expired"
        return "active"


@dataclass(frozen=True)
class IssuedToken:
    info: TokenInfo
    secret: str


@dataclass(frozen=True)
class Revoked:
    info: TokenInfo
    derived: tuple[str, ...]  # ids of the tokens it minted, directly or not, revoked with it


def _use_due(last_used: datetime | None, now: datetime) -> bool:
    return last_used is None or now - last_used >= _LAST_USED_RESOLUTION


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class IdentityStore:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        hasher: PasswordHasher | None = None,
        *,
        token_cache_seconds: float = 0.0,
    ):
        self._sessions = sessions
        self._hasher = hasher or PasswordHasher()
        self.tokens = TokenCache(token_cache_seconds)
        # Verifying against a dummy hash keeps unknown users as slow as wrong passwords.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    # users -----------------------------------------------------------------
    def create_user(
        self,
        name: str,
        *,
        password: str | None = None,
        scopes: Iterable[Scope] = (Scope.READ,),
    ) -> UserInfo:
        if not _NAME.match(name):
            raise InvalidInput(
                f"invalid user name {name!r}: 1-64 letters, digits, '_', '.', '@' or '-', "
                "starting with a letter or digit"
            )
        scope_set = frozenset(scopes)
        if not scope_set:
            raise InvalidInput("a user needs at least one scope")
        password_hash = self._hash_password(password) if password is not None else None
        with self._sessions.begin() as s:
            if s.scalar(select(User.id).where(User.name == name)) is not None:
                raise Conflict(f"user {name!r} already exists")
            user = User(
                name=name,
                password_hash=password_hash,
                scopes=format_scopes(scope_set),
                is_active=True,
                created_at=utcnow(),
            )
            s.add(user)
            s.flush()
            return _user_info(user)

    def set_password(self, name: str, password: str) -> None:
        password_hash = self._hash_password(password)
        with self._sessions.begin() as s:
            self._user(s, name).password_hash = password_hash

    def set_active(self, name: str, active: bool) -> None:
        with self._sessions.begin() as s:
            self._user(s, name).is_active = active
        if not active:
            self.tokens.forget_user(name)

    def get_user(self, name: str) -> UserInfo:
        with self._sessions() as s:
            return _user_info(self._user(s, name))

    def user_exists(self, name: str) -> bool:
        with self._sessions() as s:
            return s.scalar(select(User.id).where(User.name == name)) is not None

    def list_users(self) -> list[UserInfo]:
        with self._sessions() as s:
            return [_user_info(u) for u in s.scalars(select(User).order_by(User.name))]

    # tokens ----------------------------------------------------------------
    def create_token(
        self,
        user: str,
        scopes: Iterable[Scope],
        *,
        expires_in: timedelta | None = None,
        name: str = "",
        parent: str | None = None,
        expiry_asked: bool = True,
    ) -> IssuedToken:
        """A new token of ``user``'s; ``parent`` is the id of the token that asks for it.

        A token never outlives nor outranks its parent: one that would expire later is
        refused when ``expiry_asked`` (the caller named a lifetime), else it ends with
        the parent; a scope the parent lacks is refused.
        """
        scope_set = frozenset(scopes)
        if not scope_set:
            raise InvalidInput("a token needs at least one scope")
        if len(name) > 128:
            raise InvalidInput("token name is longer than 128 characters")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        with self._sessions.begin() as s:
            if parent is not None:
                # The parent is read to write against it: a revocation committed
                # meanwhile must be seen, or the new token would escape it.
                begin_write(s)
            owner = self._user(s, user)
            allowed = frozenset(parse_scopes(owner.scopes))
            if Scope.ADMIN not in allowed and not scope_set <= allowed:
                extra = format_scopes(scope_set - allowed)
                raise Forbidden(
                    f"user {user!r} may not grant scope(s) {extra}: "
                    f"its own scopes are {format_scopes(allowed)}"
                )
            expires_at = now + expires_in if expires_in else None
            if parent is not None:
                expires_at = self._within_parent(
                    s, parent, owner, scope_set, expires_at, expiry_asked=expiry_asked
                )
            row = ApiToken(
                id=secrets.token_hex(6),
                user_id=owner.id,
                name=name,
                token_hash=hash_token(secret),
                scopes=format_scopes(scope_set),
                created_at=now,
                expires_at=expires_at,
                parent_id=parent,
            )
            s.add(row)
            s.flush()
            return IssuedToken(info=_token_info(row, owner.name), secret=secret)

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        with self._sessions() as s:
            q = select(ApiToken, User.name).join(User).order_by(ApiToken.created_at, ApiToken.id)
            if user is not None:
                self._user(s, user)
                q = q.where(User.name == user)
            return [_token_info(t, owner) for t, owner in s.execute(q)]

    def revoke_token(self, token_id: str, *, owner: str | None = None) -> Revoked:
        """Revoke a token and every token minted with it, transitively; with ``owner``,
        only one of that user's tokens."""
        with self._sessions.begin() as s:
            begin_write(s)
            row = s.execute(
                select(ApiToken, User.name).join(User).where(ApiToken.id == token_id)
            ).first()
            if row is None or (owner is not None and row[1] != owner):
                raise NotFound(f"no token with id {token_id!r}")
            token = row[0]
            now = utcnow()
            if token.revoked_at is None:
                token.revoked_at = now
            # Breadth first over parent_id; revoked descendants are walked too, so
            # that the whole tree ends revoked whatever was revoked before.
            derived: list[str] = []
            frontier = [token.id]
            while frontier:
                children = list(s.scalars(select(ApiToken).where(ApiToken.parent_id.in_(frontier))))
                for child in children:
                    if child.revoked_at is None:
                        child.revoked_at = now
                        derived.append(child.id)
                frontier = [c.id for c in children]
            revoked = Revoked(_token_info(token, row[1]), tuple(derived))
        # Every token of the tree, revoked now or before: one may still be cached.
        self.tokens.forget_tokens({token_id, *derived})
        return revoked

    # authentication ---------------------------------------------------------
    def cached_token(self, secret: str) -> Principal | None:
        """The token's principal if this process checked it lately and nothing needs the
        database (not expired, its last use recorded recently enough); else None, and
        :meth:`authenticate_token` decides. Never blocks: callable on an event loop."""
        cached = self.tokens.get(hash_token(secret))
        if cached is None:
            return None
        now = utcnow()
        if cached.expires_at is not None and cached.expires_at <= now:
            return None
        if _use_due(cached.last_used_at, now):
            return None
        return cached.principal

    def authenticate_token(self, secret: str) -> Principal:
        found = self.cached_token(secret)
        if found is not None:
            return found
        now = utcnow()
        digest = hash_token(secret)
        with self._sessions() as s:
            row = s.execute(
                select(ApiToken, User).join(User).where(ApiToken.token_hash == digest)
            ).first()
            if row is None:
                raise Unauthorized("the token is not valid")
            token, user = row
            if token.revoked_at is not None:
                raise Unauthorized(f"token {token.id} has been revoked")
            if token.expires_at is not None and token.expires_at <= now:
                raise Unauthorized(f"token {token.id} expired at {token.expires_at.isoformat()}")
            if not user.is_active:
                raise Unauthorized(f"user {user.name!r} is disabled")
            principal = Principal(
                user=user.name, scopes=parse_scopes(token.scopes), token_id=token.id
            )
            due = _use_due(token.last_used_at, now)
            expires_at, last_used = token.expires_at, token.last_used_at
        if due and self._touch(principal.token_id, now):
            last_used = now  # or another request's, a moment ago: as good
        self.tokens.put(digest, CachedToken(principal, expires_at, last_used))
        return principal

    def _touch(self, token_id: str | None, now: datetime) -> bool:
        """Record a token's use unless that means waiting for a lock: the request it
        authenticates is served either way, and the next one will record it. True if
        recorded (or already recorded by another request)."""
        stale = now - _LAST_USED_RESOLUTION
        try:
            with self._sessions.begin() as s, dialect_of(s).no_lock_wait(s):
                s.execute(
                    update(ApiToken)
                    .where(
                        ApiToken.id == token_id,
                        or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= stale),
                    )
                    .values(last_used_at=now)
                )
        except (OperationalError, InternalError) as exc:
            # Locked, busy, lock wait timeout; or a database switched to read-only
            # (PostgreSQL reports that as an internal error), where reads still serve.
            log.debug("last use of token %s not recorded: %s", token_id, exc.orig)
            return False
        return True

    def authenticate_basic(self, name: str, secret: str) -> Principal:
        """HTTP Basic: the secret is either the user's password or one of its tokens."""
        if secret.startswith(TOKEN_PREFIX):
            principal = self.authenticate_token(secret)
            if principal.user != name:
                raise Unauthorized("the token does not belong to that user")
            return principal
        with self._sessions() as s:
            user = s.scalar(select(User).where(User.name == name))
            stored = user.password_hash if user is not None else None
            if not self._verify(stored, secret) or user is None:
                raise Unauthorized("wrong user name or password")
            if not user.is_active:
                raise Unauthorized(f"user {name!r} is disabled")
            return Principal(user=user.name, scopes=parse_scopes(user.scopes))

    # helpers ---------------------------------------------------------------
    @staticmethod
    def _within_parent(
        s: Session,
        parent_id: str,
        owner: User,
        scopes: frozenset[Scope],
        expires_at: datetime | None,
        *,
        expiry_asked: bool,
    ) -> datetime | None:
        # FOR UPDATE (PostgreSQL, MariaDB): waits for a revocation of the parent in
        # progress and then sees it.
        parent = s.scalar(select(ApiToken).where(ApiToken.id == parent_id).with_for_update())
        now = utcnow()
        if parent is None or parent.user_id != owner.id:
            raise Forbidden(f"token {parent_id} is not one of {owner.name!r}'s tokens")
        if parent.revoked_at is not None or (
            parent.expires_at is not None and parent.expires_at <= now
        ):
            raise Forbidden(f"token {parent_id} is no longer valid and cannot mint tokens")
        held = parse_scopes(parent.scopes)
        if Scope.ADMIN not in held and not scopes <= held:
            raise Forbidden(
                f"token {parent_id} may not grant scope(s) {format_scopes(scopes - held)}: "
                f"its own scopes are {format_scopes(held)}"
            )
        limit = parent.expires_at
        if limit is None or (expires_at is not None and expires_at <= limit):
            return expires_at
        if expiry_asked:
            asked = "never" if expires_at is None else expires_at.isoformat()
            raise InvalidInput(
                f"token {parent_id}, which creates this one, expires at {limit.isoformat()}; "
                f"a token it creates cannot live longer (asked: {asked})"
            )
        return limit

    def _verify(self, stored: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored or self._dummy_hash, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    def _hash_password(self, password: str) -> str:
        if len(password) < MIN_PASSWORD:
            raise InvalidInput(f"password is shorter than {MIN_PASSWORD} characters")
        return self._hasher.hash(password)

    @staticmethod
    def _user(s: Session, name: str) -> User:
        user = s.scalar(select(User).where(User.name == name))
        if user is None:
            raise NotFound(f"no user named {name!r}")
        return user


def _user_info(u: User) -> UserInfo:
    return UserInfo(
        name=u.name,
        scopes=parse_scopes(u.scopes),
        is_active=u.is_active,
        created_at=u.created_at,
        has_password=u.password_hash is not None,
    )


def _token_info(t: ApiToken, owner: str) -> TokenInfo:
    return TokenInfo(
        id=t.id,
        user=owner,
        name=t.name,
        scopes=parse_scopes(t.scopes),
        created_at=t.created_at,
        expires_at=t.expires_at,
        last_used_at=t.last_used_at,
        revoked_at=t.revoked_at,
        parent_id=t.parent_id,
    )
