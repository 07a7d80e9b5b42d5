"""The gateway's pool of data ports: a configured range, ports reserved per session and
given back on release. Giving back is idempotent, so a release that runs twice (the
owner's and the TTL's) cannot free a port another session holds."""

from __future__ import annotations

import socket

from strato.stream.model.errors import NoResource


class PortPool:
    def __init__(self, first: int, last: int, host: str = "127.0.0.1") -> None:
        if not 1 <= first <= last <= 65535:
            raise ValueError(f"port range {first}-{last} is not valid")
        self.first, self.last, self.host = first, last, host
        self._free = list(range(first, last + 1))
        self._held: dict[int, str] = {}  # port -> session
        self._next = 0

    @property
    def total(self) -> int:
        return self.last - self.first + 1

    @property
    def reserved(self) -> int:
        return len(self._held)

    def held_by(self, session: str) -> list[int]:
        return sorted(p for p, s in self._held.items() if s == session)

    def reserve(self, n: int, session: str) -> list[int]:
        """``n`` ports for ``session``, all or none. Ports some other program holds now
        are skipped (a bind probe), so the data server is not handed a port it cannot
        bind. NoResource when fewer than ``n`` are free."""
        if n > len(self._free):
            raise NoResource(
                f"{n} ports asked, {len(self._free)} of {self.total} free on this gateway"
            )
        chosen: list[int] = []
        tried = 0
        # Round robin from where the last reservation stopped: a port just given back is
        # not handed out again at once (its old connections may still be in TIME_WAIT).
        while len(chosen) < n and tried < len(self._free):
            idx = (self._next + tried) % len(self._free)
            port = self._free[idx]
            tried += 1
            if self._bindable(port):
                chosen.append(port)
        if len(chosen) < n:
            raise NoResource(
                f"{n} ports asked, {len(chosen)} of {self.total} free and bindable on this gateway"
            )
        taken = set(chosen)
        # The next reservation starts at the first port after those tried, wherever it
        # sits once the chosen ones are out of the list (not at the same index, which
        # skipped a port each time).
        after = self._free[(self._next + tried) % len(self._free)]
        self._free = [p for p in self._free if p not in taken]
        self._next = self._free.index(after) if after not in taken else 0
        for port in chosen:
            self._held[port] = session
        return chosen

    def release(self, session: str) -> list[int]:
        """Give back every port ``session`` holds; nothing when it holds none."""
        mine = self.held_by(session)
        for port in mine:
            del self._held[port]
            self._free.append(port)
        return mine

    def _bindable(self, port: int) -> bool:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            # As the data servers bind: SO_REUSEADDR, so TIME_WAIT does not count as held.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((self.host, port))
            except OSError:
                return False
        return True
