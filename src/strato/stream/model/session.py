"""One streaming session on one gateway: what its owner asked, what it was given, where it
forwards, and how far it got. Independent of every other session."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from enum import StrEnum

from strato.stream.dataserver.base import Address


class State(StrEnum):
    WAITING_HELLO = "waiting_hello"  # req came, its hello not yet
    READY = "ready"  # req answered; no targets yet
    FORWARDING = "forwarding"  # the data server forwards to the targets
    FAILED = "failed"  # the data server could not open, or its forwarder died
    RELEASED = "released"


@dataclass(frozen=True)
class HelloData:
    role: str
    prod_listeners: tuple[Address, ...]


@dataclass(eq=False)
class Session:
    uid: str
    owner: str
    role: str
    num_conn: int
    rate: int
    listeners: tuple[Address, ...]  # as the data server binds them
    advertised: tuple[Address, ...]  # as clients are told to reach them
    prod_listeners: tuple[Address, ...] = ()
    targets: tuple[Address, ...] = ()
    state: State = State.WAITING_HELLO
    reason: str = ""  # why FAILED
    created: float = field(default_factory=time.time)
    last_activity: float = field(default_factory=time.monotonic)
    last_traffic: int = -1  # the counters' sum when last looked at
    # The gateway-to-gateway leg: this side's per-session certificate and key (made from
    # a CSPRNG at req, sent to the client in the req's metadata) and the peer gateway's
    # certificate the client hands over with update. Empty: the leg is plaintext.
    leg_cert: bytes = b""
    leg_key: bytes = b""
    peer_cert: bytes = b""
    # Resolved by the session's hello; the req waits on it (no thread held).
    hello: asyncio.Future[HelloData] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def ports(self) -> list[int]:
        return [a.port for a in self.listeners]

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    def idle_for(self, now: float) -> float:
        return now - self.last_activity
