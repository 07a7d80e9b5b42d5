"""What the streams page and ``/api/stream`` show and do: the sessions of the control
server running in this process (``stream.serve_in_up``), each with its listeners, their
targets, connections, bytes and rates, and release, which is the gRPC ``release``
itself (:meth:`Sessions.release`: forwarders stopped, ports back in the pool).

A user sees the sessions made with their own identity (the control server names a
session's owner by the strato user its token belongs to); an administrator sees every
session. Another user's session is answered as if it did not exist. Errors are the
control plane's (:mod:`strato.stream.model.errors`), turned into strato's HTTP errors by
:func:`http_error` from the status the one table of :mod:`strato.stream.control.errors`
gives them. Everything here runs on the event loop the control server runs on."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from strato import __version__
from strato import errors as strato_errors
from strato.auth import Principal, Scope
from strato.stream.api.rates import Rates
from strato.stream.dataserver.base import Address
from strato.stream.model import validate
from strato.stream.model.errors import StreamError, UnknownUid
from strato.stream.model.manager import Sessions
from strato.stream.model.session import Session, State
from strato.stream.model.validate import format_address

NOT_SERVING = (
    "The stream control server does not run in this process: stream.serve_in_up is off. "
    "A gateway's own `strato stream serve` holds its sessions; set serve_in_up = true "
    "under [stream] to run the control server here and list its sessions on this page."
)

log = logging.getLogger(__name__)
Counted = list[tuple[Address, int, int, int]]


@dataclass(frozen=True)
class Serving:
    """The control server running in this process."""

    sessions: Sessions
    backend: str
    listen: str
    port: int


class LocalGateway:
    """The control server of this process, when it runs one: the capability's lifespan
    attaches it once it serves and detaches it before it stops."""

    def __init__(self) -> None:
        self.serving: Serving | None = None
        self.rates = Rates()

    def attach(self, serving: Serving) -> None:
        self.serving = serving

    def detach(self) -> None:
        self.serving = None
        self.rates = Rates()

    # what a caller sees --------------------------------------------------------------
    async def snapshot(self, caller: Principal) -> dict[str, Any]:
        """The caller's sessions (every session for an administrator), with counters
        and rates read now, and the gateway's state."""
        serving = self.serving
        viewer = {"user": caller.user, "all": _sees_all(caller)}
        if serving is None:
            return {"serving": False, "detail": NOT_SERVING, "gateway": None, "viewer": viewer}
        sessions = serving.sessions
        shown = sorted((s for s in sessions.all() if _may_see(caller, s)), key=lambda s: s.created)
        counted = await asyncio.gather(*(_counters(sessions, s) for s in shown))
        self.rates.keep({s.uid for s in sessions.all()})
        now = time.monotonic()
        return {
            "serving": True,
            "gateway": _gateway(serving),
            "viewer": viewer,
            "sessions": [
                self._view(s, found, problem, now)
                for s, (found, problem) in zip(shown, counted, strict=True)
            ],
        }

    async def one(self, caller: Principal, uid: str) -> dict[str, Any]:
        session = self._visible(caller, uid)
        serving = self.serving
        assert serving is not None  # _visible found a session
        found, problem = await _counters(serving.sessions, session)
        return self._view(session, found, problem, time.monotonic())

    async def release(self, caller: Principal, uid: str) -> dict[str, Any]:
        """Release the session as its owner's gRPC ``release`` does. The release runs to
        its end even when the caller goes away (its forwarder stopped, its ports back)."""
        session = self._visible(caller, uid)
        serving = self.serving
        assert serving is not None
        ports = session.ports
        # As its owner: an administrator releases another's session as they would.
        await asyncio.shield(serving.sessions.release(session.owner, session.uid))
        self.rates.forget(session.uid)
        pool = serving.sessions.pool
        return {
            "uid": session.uid,
            "released": True,
            "ports": ports,
            "ports_free": pool.total - pool.reserved,
        }

    def _visible(self, caller: Principal, uid: str) -> Session:
        uid = validate.uid(uid)
        serving = self.serving
        if serving is None:
            raise UnknownUid(
                f"no session {uid!r}: the stream control server does not run in this "
                "process (stream.serve_in_up is off)"
            )
        session = serving.sessions.get(uid)
        if session is None or not _may_see(caller, session):
            raise UnknownUid(f"no session {uid!r} on this gateway")
        return session

    def _view(
        self, session: Session, found: Counted | None, problem: str | None, now: float
    ) -> dict[str, Any]:
        by_address = {a: (n, i, o) for a, n, i, o in found or ()}
        listeners = []
        for index, address in enumerate(session.advertised):
            connections, bytes_in, bytes_out = by_address.get(address, (0, 0, 0))
            shown = format_address(address)
            rate_in, rate_out = (
                self.rates.read(session.uid, shown, bytes_in, bytes_out, now)
                if found is not None
                else (None, None)
            )
            target = session.targets[index] if index < len(session.targets) else None
            listeners.append(
                {
                    "listener": shown,
                    "target": format_address(target) if target is not None else None,
                    "connections": connections,
                    "bytes_in": bytes_in,
                    "bytes_out": bytes_out,
                    "rate_in": rate_in,
                    "rate_out": rate_out,
                }
            )
        return {
            "uid": session.uid,
            "owner": session.owner,
            "role": session.role,
            "state": session.state.value,
            "reason": session.reason or None,
            "num_conn": session.num_conn,
            "requested_rate": session.rate,
            "created": datetime.fromtimestamp(session.created, UTC)
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z"),
            "idle_seconds": round(session.idle_for(now), 1),
            "prod_listeners": [format_address(a) for a in session.prod_listeners],
            "targets": [format_address(a) for a in session.targets],
            "listeners": listeners,
            "bytes_in": sum(x["bytes_in"] for x in listeners),
            "bytes_out": sum(x["bytes_out"] for x in listeners),
            "rate_in": _total(x["rate_in"] for x in listeners),
            "rate_out": _total(x["rate_out"] for x in listeners),
            "counters_error": problem,
        }


def _sees_all(caller: Principal) -> bool:
    return Scope.ADMIN in caller.scopes


def _may_see(caller: Principal, session: Session) -> bool:
    return _sees_all(caller) or (caller.user is not None and session.owner == caller.user)


async def _counters(sessions: Sessions, session: Session) -> tuple[Counted | None, str | None]:
    """The session's counters, or why there are none: one failing session does not keep
    the others from being shown, nor the page from answering."""
    try:
        # A dead forwarder is not asked (its pipe is closed); the sweep marks it failed.
        if session.state is State.FORWARDING and not await sessions.dataserver.alive(session.uid):
            return None, "its forwarder is not running"
        return await sessions.counters(session.owner, session.uid), None
    except StreamError as exc:
        return None, exc.message
    except Exception:
        log.exception("session %s: reading its counters failed", session.uid)
        return None, "its counters could not be read"


def _total(rates: Any) -> float | None:
    known = [r for r in rates if r is not None]
    return sum(known) if known else None


def _gateway(serving: Serving) -> dict[str, Any]:
    pool = serving.sessions.pool
    return {
        "version": __version__,
        "backend": serving.backend,
        "listen": serving.listen,
        "port": serving.port,
        "sessions": len(serving.sessions),
        "ports_total": pool.total,
        "ports_free": pool.total - pool.reserved,
    }


# The gRPC status each control-plane error has in the one table, as strato's HTTP error.
_BY_STATUS: dict[str, type[strato_errors.StratoError]] = {
    "UNAUTHENTICATED": strato_errors.Unauthorized,
    "PERMISSION_DENIED": strato_errors.Forbidden,
    "NOT_FOUND": strato_errors.NotFound,
    "ALREADY_EXISTS": strato_errors.Conflict,
    "INVALID_ARGUMENT": strato_errors.InvalidInput,
    "FAILED_PRECONDITION": strato_errors.Conflict,
    "ABORTED": strato_errors.Conflict,
    "RESOURCE_EXHAUSTED": strato_errors.Unavailable,
    "DEADLINE_EXCEEDED": strato_errors.GatewayTimeout,
    "UNAVAILABLE": strato_errors.Unavailable,
}


def http_error(exc: StreamError) -> strato_errors.StratoError:
    """``exc`` as strato's error whose HTTP status matches its gRPC status (an unknown
    uid 404, a malformed one 400, another identity's session 403, a data server that
    failed 503), its message kept."""
    from strato.stream.control.errors import code_of  # grpc, only once an error happens

    kind = _BY_STATUS.get(code_of(exc).name, strato_errors.Unavailable)
    return kind(f"{exc.message} ({exc.name})")


# for the page --------------------------------------------------------------------------
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
UNKNOWN = "\N{EN DASH}"  # no reading yet


def size(n: float | None) -> str:
    """Bytes as people read them: 1.5 MiB. The page's script draws the same."""
    if n is None:
        return UNKNOWN
    value, unit = float(n), 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    return f"{int(value)} B" if unit == 0 else f"{value:.1f} {_UNITS[unit]}"


def speed(n: float | None) -> str:
    return UNKNOWN if n is None else f"{size(n)}/s"
