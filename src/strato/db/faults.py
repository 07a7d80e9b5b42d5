"""Faults: what a database or the disk under it says when it cannot serve.

Which errors mean that is each driver's business: the dialect whose driver raised an
error reads it (:meth:`strato.db.dialects.base.Dialect.fault`); what is left here is what
SQLAlchemy and the operating system say the same way for every engine.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import DBAPIError

from strato.errors import Unavailable

if TYPE_CHECKING:
    from strato.db.dialects.base import Dialect

# A file the server cannot write (or read): a read-only mount, permissions, a full disk.
_STORAGE_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT})


@dataclass(frozen=True)
class Fault:
    """A failure of the database or the storage under it, as users should hear of it."""

    error: Unavailable
    # The connection went away under the request: running it again may well succeed.
    lost_connection: bool
    # What the driver said, for the log (never for clients: it names hosts and files).
    cause: str


def fault_of(exc: BaseException) -> Fault | None:
    """``exc`` as a :class:`Fault` when it says the database or its storage cannot serve
    now (down, connection lost, read-only, locked, disk full); None for anything else,
    which stays a bug of ours (500)."""
    if isinstance(exc, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return Fault(Unavailable("the database did not answer; try again shortly"), True, str(exc))
    orig: BaseException = (exc.orig or exc) if isinstance(exc, DBAPIError) else exc
    # Through SQLAlchemy, or a driver used directly (the embedded bus's SQLite).
    dialect = _raised_by(orig)
    if dialect is not None:
        return dialect.fault(exc, orig)
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(
            exc, sa_exc.OperationalError | sa_exc.InterfaceError
        ):
            return unreachable(orig)
        return None
    if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
        reason = os.strerror(exc.errno) if exc.errno is not None else "storage error"
        return Fault(
            Unavailable(f"the server cannot write its data: {reason}"), False, first_line(exc)
        )
    return None


def busy(exc: BaseException) -> bool:
    """Whether ``exc`` says another writer held the database longer than the driver waits
    for it: an outage to wait out, not a fault of the work that ran into it."""
    orig = (exc.orig or exc) if isinstance(exc, DBAPIError) else exc
    dialect = _raised_by(orig)
    return dialect is not None and dialect.busy(orig)


def driver_message(exc: BaseException) -> str:
    """What the driver said in ``exc`` (or the error itself when no driver raised it)."""
    orig = (exc.orig or exc) if isinstance(exc, DBAPIError) else exc
    dialect = _raised_by(orig)
    return str(orig) if dialect is None else dialect.message(orig)


def unreachable(orig: BaseException) -> Fault:
    return Fault(
        Unavailable("the database is not reachable; try again shortly"), True, first_line(orig)
    )


def busy_fault(orig: BaseException) -> Fault:
    return Fault(Unavailable("the database is busy or cannot be opened"), False, first_line(orig))


def read_only_fault(orig: BaseException) -> Fault:
    return Fault(
        Unavailable("the database is read-only: writes are refused until it is writable"),
        False,
        first_line(orig),
    )


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _raised_by(orig: BaseException) -> Dialect | None:
    from strato.db.dialects import registered

    for dialect in registered():
        if dialect.raised(orig):
            return dialect
    return None
