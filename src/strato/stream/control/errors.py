"""The one table from the control plane's errors to gRPC status codes, and how an error
travels: the status code and message, plus a ``google.rpc.Status`` in the trailing
metadata ``grpc-status-details-bin`` (gRPC's rich error model) whose detail is a
``google.rpc.ErrorInfo`` with ``reason`` the SciStream error name (AUTH_ERROR,
INVALID_UID, NO_RESOURCE, CONN_ERROR, TIMEOUT ...) and ``domain`` "scistream". A client
that ignores details still gets the right code and a message naming what was wrong."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from strato.stream.model.errors import (
    ConnError,
    Forbidden,
    HelloRejected,
    InvalidRequest,
    InvalidUid,
    NoResource,
    StreamError,
    Timeout,
    UidInUse,
    Unauthenticated,
    UnknownUid,
    WrongState,
)

DOMAIN = "scistream"
DETAILS_KEY = "grpc-status-details-bin"

# Most specific first: the first class the error is an instance of decides.
CODES: tuple[tuple[type[StreamError], grpc.StatusCode], ...] = (
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (Forbidden, grpc.StatusCode.PERMISSION_DENIED),
    (UnknownUid, grpc.StatusCode.NOT_FOUND),
    (UidInUse, grpc.StatusCode.ALREADY_EXISTS),
    (InvalidUid, grpc.StatusCode.INVALID_ARGUMENT),
    (InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (WrongState, grpc.StatusCode.FAILED_PRECONDITION),
    (NoResource, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (Timeout, grpc.StatusCode.DEADLINE_EXCEEDED),
    (ConnError, grpc.StatusCode.UNAVAILABLE),
    (HelloRejected, grpc.StatusCode.ABORTED),
)


def code_of(exc: StreamError) -> grpc.StatusCode:
    return next((c for kind, c in CODES if isinstance(exc, kind)), grpc.StatusCode.UNKNOWN)


def reason_of(exc: StreamError) -> str:
    # A req failed by its refused hello carries the hello's reason (INVALID_REQUEST ...).
    return exc.reason if isinstance(exc, HelloRejected) else exc.name


def details(exc: StreamError) -> tuple[tuple[str, bytes]]:
    """The trailing metadata carrying ``exc`` as a google.rpc.Status."""
    info = error_details_pb2.ErrorInfo(reason=reason_of(exc), domain=DOMAIN)
    packed = any_pb2.Any()
    packed.Pack(info)
    status = status_pb2.Status(code=code_of(exc).value[0], message=exc.message, details=[packed])
    return ((DETAILS_KEY, status.SerializeToString()),)


def reason_from(trailing: grpc.aio.Metadata | None) -> str | None:
    """The SciStream error name a failed call carried, for clients (None if none)."""
    if trailing is None:
        return None
    for key, value in trailing:
        if key == DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            for packed in status.details:
                info = error_details_pb2.ErrorInfo()
                if packed.Unpack(info):
                    return str(info.reason)
    return None
