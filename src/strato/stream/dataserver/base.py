"""What every data server is. The control server owns sessions, ports and identities; a
data server only opens listeners that forward to targets, reports their counters, and
closes them. The contract between the two parts of strato.stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class TlsLeg:
    """How a leg between gateways is encrypted: this side's certificate and key (PEM, made
    per session from a CSPRNG) and the peer's certificate it pins."""

    cert_pem: bytes
    key_pem: bytes
    peer_cert_pem: bytes
    role: str  # "client": this side dials the peer gateway over TLS; "server": it accepts


@dataclass(frozen=True)
class Forwarding:
    """One session's forwarding: listener ``i`` forwards to ``targets[i % len(targets)]``.
    ``tls_in``/``tls_out``: the listening side / the dialing side is a TLS leg."""

    session: str
    listeners: tuple[Address, ...]
    targets: tuple[Address, ...]
    tls_in: TlsLeg | None = None
    tls_out: TlsLeg | None = None


@dataclass(frozen=True)
class Counters:
    listener: Address
    connections: int
    bytes_in: int  # from the listener's clients
    bytes_out: int  # to them


class DataServerError(Exception):
    """A data server could not do what was asked; the reason is said."""


class DataServer(Protocol):
    name: str

    async def open(self, forwarding: Forwarding) -> None:
        """Listen on every listener and forward; returns once all listen. DataServerError
        (naming the port) when one cannot be bound or the process does not start."""
        ...

    async def update(self, session: str, targets: tuple[Address, ...]) -> None:
        """New targets for an open session (SciStream's ``update``)."""
        ...

    async def close(self, session: str) -> None:
        """Stop forwarding and free the ports; idempotent."""
        ...

    async def alive(self, session: str) -> bool:
        """Whether the session's forwarder still runs (a killed one is reported)."""
        ...

    async def counters(self, session: str) -> list[Counters]: ...

    async def reap(self) -> list[str]:
        """At start: stop forwarders a previous control server left (found by a marker of
        this data server's, never by a guess) and return their sessions."""
        ...

    async def close_all(self) -> None: ...


@runtime_checkable
class Warms(Protocol):
    """A data server that can get ready for its first session at start (the builtin one
    starts its spare forwarders); the control server calls ``warm`` after ``reap``."""

    async def warm(self) -> None: ...
