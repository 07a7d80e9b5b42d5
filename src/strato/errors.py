"""Domain errors raised by core code.

Core code knows nothing of HTTP: each error has a stable ``code`` (used as the
problem type) and a human ``title``. The HTTP status of each class lives in
one table in :mod:`strato.http.problems`; the CLI maps them to exit codes.
"""

from __future__ import annotations

from typing import Any


class StratoError(Exception):
    """Base of every error a user can cause or needs to hear about."""

    code = "error"
    title = "Error"
    # The problem type's URI where a standard names one (OGC's exception types), else
    # None: the type is then strato's own, made from ``code``.
    type_uri: str | None = None
    # Seconds after which trying again may succeed; sent as Retry-After when set.
    retry_after: int | None = None

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class InvalidInput(StratoError):
    code = "invalid-input"
    title = "Invalid input"


class Unauthorized(StratoError):
    code = "unauthorized"
    title = "Authentication required"


class Forbidden(StratoError):
    code = "forbidden"
    title = "Not allowed"


class NotFound(StratoError):
    code = "not-found"
    title = "Not found"


class Conflict(StratoError):
    code = "conflict"
    title = "Conflict"


class TooManyRequests(StratoError):
    code = "too-many-requests"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class PayloadTooLarge(StratoError):
    code = "payload-too-large"
    title = "Request too large"


class Unavailable(StratoError):
    code = "unavailable"
    title = "Service unavailable"
    retry_after = 5


# A node forwarding work to another one (a process provider) stands as a gateway: when the
# other side cannot be reached or answers nonsense, the fault lies between the two servers,
# not in the user's request, so these are rightly 5xx (502, 504), not a 4xx. They are
# Unavailable (a try later may succeed), with the status the gateway's situation names.
class BadGateway(Unavailable):
    code = "bad-gateway"
    title = "The remote service failed to answer"


class GatewayTimeout(Unavailable):
    code = "gateway-timeout"
    title = "The remote service did not answer in time"
