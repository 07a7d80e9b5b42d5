"""Errors of the control plane, each with the name SciStream's draft gives it (the reason
a client reads from the status detail). Mapped to gRPC codes in one table
(strato.stream.control.errors)."""

from __future__ import annotations


class StreamError(Exception):
    """Base: ``name`` is the SciStream error name, the message says what was wrong."""

    name = "ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthenticated(StreamError):
    name = "AUTH_ERROR"


class Forbidden(StreamError):
    """A valid identity that may not do this (scope, or another identity's session)."""

    name = "AUTH_ERROR"


class InvalidRequest(StreamError):
    """A bad role, num_conn, rate or ``ip:port``."""

    name = "INVALID_REQUEST"


class InvalidUid(StreamError):
    """A malformed uid."""

    name = "INVALID_UID"


class UnknownUid(InvalidUid):
    pass


class UidInUse(InvalidUid):
    pass


class WrongState(StreamError):
    """The session is not at the step the call needs (update before its req was answered)."""

    name = "INVALID_STATE"


class NoResource(StreamError):
    name = "NO_RESOURCE"


class ConnError(StreamError):
    """The data server could not listen or forward."""

    name = "CONN_ERROR"


class Timeout(StreamError):
    name = "TIMEOUT"


class HelloRejected(StreamError):
    """The req's session was ended because its hello was refused; ``reason`` is the
    hello's error name."""

    name = "HELLO_REJECTED"

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
