"""The sessions of one gateway: req, hello, update and release as SciStream defines them,
with a port pool and a data server. Everything here runs on one event loop; waiting
(a req for its hello, a hello for its req) is a future, never a thread.

Each session belongs to the identity that created it: another identity is refused on
everything but a hello for a uid nobody has asked for yet, which waits for its own
owner's req (hellos are matched by owner and uid)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from strato.stream.dataserver.base import Address, DataServer, DataServerError, Forwarding
from strato.stream.model import legs, validate
from strato.stream.model.errors import (
    ConnError,
    Forbidden,
    HelloRejected,
    InvalidRequest,
    NoResource,
    StreamError,
    Timeout,
    UidInUse,
    UnknownUid,
    WrongState,
)
from strato.stream.model.ports import PortPool
from strato.stream.model.session import HelloData, Session, State

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    hello_deadline: float = 30.0  # a req waits this long for its hello, and a hello for its req
    ttl: float = 3600.0  # an idle session is released after this long
    max_num_conn: int = 64
    max_sessions: int = 1000
    max_pending_hellos: int = 1000
    max_addresses: int = 64  # in one hello's or update's list


@dataclass(eq=False)
class _Pending:
    """A hello that came before its req."""

    data: HelloData
    matched: asyncio.Future[Session]


class Sessions:
    def __init__(
        self,
        pool: PortPool,
        dataserver: DataServer,
        limits: Limits,
        advertise_host: str | None = None,
        leg_tls: bool = True,
    ) -> None:
        self.leg_tls = leg_tls
        self.pool = pool
        self.dataserver = dataserver
        self.limits = limits
        self.advertise_host = advertise_host or pool.host
        self._sessions: dict[str, Session] = {}
        self._pending: dict[tuple[str, str], _Pending] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, uid: str) -> Session | None:
        return self._sessions.get(uid)

    def owned_by(self, owner: str) -> list[Session]:
        return [s for s in self._sessions.values() if s.owner == owner]

    def all(self) -> list[Session]:
        """Every live session, whoever owns it (an administrator's view)."""
        return list(self._sessions.values())

    # req ---------------------------------------------------------------------------
    async def request(self, owner: str, uid: str, role: str, num_conn: int, rate: int) -> Session:
        """Reserve ``num_conn`` ports, then wait for the session's hello. On return the
        session is READY; on any failure (deadline, refused hello, the caller gone) it
        is released and its ports are back in the pool."""
        uid = validate.uid(uid)
        role = validate.role(role)
        num_conn = validate.num_conn(num_conn, self.limits.max_num_conn)
        rate = validate.rate(rate)
        if uid in self._sessions:
            raise UidInUse(f"uid {uid!r} is a live session on this gateway")
        if len(self._sessions) >= self.limits.max_sessions:
            raise NoResource(f"this gateway holds its maximum of {len(self._sessions)} sessions")
        ports = self.pool.reserve(num_conn, uid)
        session = Session(
            uid=uid,
            owner=owner,
            role=role,
            num_conn=num_conn,
            rate=rate,
            listeners=tuple(Address(self.pool.host, p) for p in ports),
            advertised=tuple(Address(self.advertise_host, p) for p in ports),
        )
        if self.leg_tls:
            session.leg_cert, session.leg_key = legs.new_identity()
        self._sessions[uid] = session
        pending = self._pending.pop((owner, uid), None)
        if pending is not None:
            self._accept_hello(session, pending.data)
            if not pending.matched.done():
                pending.matched.set_result(session)
        try:
            data = await asyncio.wait_for(asyncio.shield(session.hello), self.limits.hello_deadline)
        except TimeoutError:
            await self._end(session, "no hello")
            raise Timeout(
                f"no hello for uid {uid!r} within {self.limits.hello_deadline:g} s; "
                "the session is released"
            ) from None
        except asyncio.CancelledError:  # the client went away: nothing may stay behind
            await self._end(session, "req cancelled")
            raise
        except StreamError:
            await self._end(session, "hello refused")
            raise
        session.prod_listeners = data.prod_listeners
        session.state = State.READY
        session.touch()
        return session

    # hello -------------------------------------------------------------------------
    async def hello(self, owner: str, uid: str, role: str, prod_listeners: list[str]) -> Session:
        """The application side's hello. Before its req it waits for it (up to the
        deadline); a hello whose addresses are refused also fails the req waiting for it
        (SciStream's client would otherwise wait forever)."""
        uid = validate.uid(uid)
        session = self._sessions.get(uid)
        if session is not None and session.owner != owner:
            raise Forbidden(f"session {uid!r} belongs to another identity")
        try:
            # SciStream's client sends the consumer side's hello with role PROD: the
            # hello's role is checked for form only, the session's is the req's.
            data = HelloData(
                role=validate.role(role),
                prod_listeners=validate.addresses(
                    prod_listeners, field="prod_listeners", limit=self.limits.max_addresses
                ),
            )
        except StreamError as exc:
            if session is not None and not session.hello.done():
                session.hello.set_exception(
                    HelloRejected(f"the hello for uid {uid!r} was refused: {exc}", exc.name)
                )
            raise
        if session is not None:
            if not session.hello.done():
                self._accept_hello(session, data)
            session.touch()
            return session
        return await self._wait_for_req(owner, uid, data)

    def _accept_hello(self, session: Session, data: HelloData) -> None:
        session.prod_listeners = data.prod_listeners
        session.hello.set_result(data)

    async def _wait_for_req(self, owner: str, uid: str, data: HelloData) -> Session:
        key = (owner, uid)
        if key in self._pending:
            raise UidInUse(f"a hello for uid {uid!r} is already waiting for its req")
        if len(self._pending) >= self.limits.max_pending_hellos:
            raise NoResource(f"{len(self._pending)} hellos already wait for their req")
        pending = _Pending(data, asyncio.get_running_loop().create_future())
        self._pending[key] = pending
        try:
            return await asyncio.wait_for(
                asyncio.shield(pending.matched), self.limits.hello_deadline
            )
        except TimeoutError:
            raise Timeout(
                f"no req for uid {uid!r} within {self.limits.hello_deadline:g} s of its hello"
            ) from None
        finally:
            if self._pending.get(key) is pending:
                del self._pending[key]

    # update ------------------------------------------------------------------------
    async def update(
        self,
        owner: str,
        uid: str,
        remote_listeners: list[str],
        role: str,
        peer_cert: bytes = b"",
    ) -> Session:
        """Forward listener ``i`` to ``remote_listeners[i mod k]``: the data server opens
        the session's listeners on the first update and changes targets on later ones.
        With TLS legs the first update carries the peer gateway's session certificate."""
        session = self._owned(owner, uid)
        if peer_cert:
            if not self.leg_tls:
                raise InvalidRequest(
                    "this gateway's legs are plaintext (leg_tls = false); a peer certificate "
                    "was sent: configure both gateways alike"
                )
            session.peer_cert = legs.peer_certificate(peer_cert)
        if role:  # SciStream's own client leaves it empty
            validate.role(role)
        targets = validate.addresses(
            remote_listeners, field="remote_listeners", limit=self.limits.max_addresses
        )
        if not targets:
            raise InvalidRequest("remote_listeners: at least one address is needed")
        if session.state is State.WAITING_HELLO:
            raise WrongState(f"session {uid!r} waits for its hello; update after its req")
        mapped = tuple(targets[i % len(targets)] for i in range(session.num_conn))
        try:
            if session.state is State.FORWARDING:
                await self.dataserver.update(uid, mapped)
            else:
                await self.dataserver.open(self._forwarding(session, mapped))
        except DataServerError as exc:
            session.state, session.reason = State.FAILED, str(exc)
            raise ConnError(f"session {uid!r}: the data server failed: {exc}") from None
        session.targets = mapped
        session.state = State.FORWARDING
        session.touch()
        return session

    def _forwarding(self, session: Session, targets: tuple[Address, ...]) -> Forwarding:
        if not self.leg_tls:
            return Forwarding(session.uid, session.listeners, targets)
        if not session.peer_cert:
            raise WrongState(
                f"session {session.uid!r}: this gateway's leg to the peer gateway is TLS; the "
                "update must carry the peer gateway's session certificate (metadata "
                "strato-peer-cert-bin, as strato stream connect sends it). Plaintext legs "
                "need leg_tls = false on both gateways"
            )
        tls = legs.leg(session.leg_cert, session.leg_key, session.peer_cert, session.role)
        if session.role == "PROD":  # the peer gateway dials in; targets are on the LAN
            return Forwarding(session.uid, session.listeners, targets, tls_in=tls)
        return Forwarding(session.uid, session.listeners, targets, tls_out=tls)

    # release -----------------------------------------------------------------------
    async def release(self, owner: str, uid: str) -> None:
        """Idempotent: an unknown or already released uid is no error."""
        uid = validate.uid(uid)
        session = self._sessions.get(uid)
        if session is None:
            return
        if session.owner != owner:
            raise Forbidden(f"session {uid!r} belongs to another identity")
        await self._end(session, "released by its owner")

    def _owned(self, owner: str, uid: str) -> Session:
        uid = validate.uid(uid)
        session = self._sessions.get(uid)
        if session is None:
            raise UnknownUid(f"no session {uid!r} on this gateway")
        if session.owner != owner:
            raise Forbidden(f"session {uid!r} belongs to another identity")
        return session

    async def _end(self, session: Session, why: str) -> None:
        if self._sessions.get(session.uid) is not session:
            return  # ended already (owner's release and the TTL at once)
        del self._sessions[session.uid]
        opened = session.state in (State.FORWARDING, State.FAILED)
        session.state = State.RELEASED
        if not session.hello.done():
            session.hello.cancel()
        try:
            if opened:
                await self.dataserver.close(session.uid)
        except DataServerError as exc:
            log.warning("session %s: closing its data server failed: %s", session.uid, exc)
        finally:
            # After the data server let go of them, so a port is never handed out bound.
            self.pool.release(session.uid)
        log.info("session %s of %s ended: %s", session.uid, session.owner, why)

    # owner's view, TTL, shutdown ---------------------------------------------------
    async def counters(self, owner: str, uid: str) -> list[tuple[Address, int, int, int]]:
        session = self._owned(owner, uid)
        if session.state is not State.FORWARDING:
            return [(a, 0, 0, 0) for a in session.advertised]
        try:
            found = await self.dataserver.counters(uid)
        except DataServerError as exc:
            raise ConnError(f"session {uid!r}: no counters: {exc}") from None
        public = dict(zip(session.listeners, session.advertised, strict=True))
        return [
            (public.get(c.listener, c.listener), c.connections, c.bytes_in, c.bytes_out)
            for c in found
        ]

    async def sweep(self) -> list[str]:
        """Release sessions idle past the TTL (traffic counts as activity) and mark those
        whose forwarder died as FAILED; returns the released uids."""
        released: list[str] = []
        for session in list(self._sessions.values()):
            if session.state is State.FORWARDING:
                await self._look_at_traffic(session)
            if session.state is State.WAITING_HELLO:
                continue  # its req's deadline ends it
            if session.idle_for(time.monotonic()) > self.limits.ttl:
                await self._end(session, f"idle for more than {self.limits.ttl:g} s")
                released.append(session.uid)
        return released

    async def _look_at_traffic(self, session: Session) -> None:
        try:
            if not await self.dataserver.alive(session.uid):
                session.state, session.reason = State.FAILED, "the forwarder is not running"
                return
            counters = await self.dataserver.counters(session.uid)
        except DataServerError as exc:
            session.state, session.reason = State.FAILED, str(exc)
            return
        total = sum(c.connections + c.bytes_in + c.bytes_out for c in counters)
        if total != session.last_traffic:
            if session.last_traffic >= 0:
                session.touch()
            session.last_traffic = total

    async def close_all(self) -> None:
        for pending in list(self._pending.values()):
            pending.matched.cancel()
        for session in list(self._sessions.values()):
            with contextlib.suppress(Exception):
                await self._end(session, "control server stopping")
        await self.dataserver.close_all()
