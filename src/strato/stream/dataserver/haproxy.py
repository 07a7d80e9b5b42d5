"""The haproxy data server: Debian's haproxy, one process per session in the foreground
(``-db``), a frontend per listener and a backend per target.

Timeouts: haproxy in TCP mode cuts a connection idle for ``timeout client``/``server``;
SciStream's configuration set 50 s, which cut quiet streams. Here they are 24 days, the
largest haproxy takes, so an idle stream lives as long as its session.

Bytes are spliced both ways (``option splice-request``/``splice-response``): they go from
socket to socket through a kernel pipe, never copied into haproxy, as a user who wants its
speed configures it (``splice`` picks another choice, for benchmarks).

Counters and ``update`` go through the session's runtime API socket (``show stat``,
``set server ... addr``), so neither needs a reload. TLS legs are the stunnel and builtin
data servers' job.
"""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path
from typing import Literal

from strato.stream.dataserver.base import Address, Counters, DataServerError, Forwarding
from strato.stream.dataserver.proxied import ProxiedDataServer, ProxySession, hostport

IDLE_TIMEOUT = "24d"
Splice = Literal["off", "auto", "always"]
# haproxy's kernel splicing (socket to pipe to socket, the bytes never in user space), as
# a user who wants its speed configures it: "always" splices both directions (option
# splice-request and splice-response). Measured here (bench/stream.py), it moves a bulk
# stream 1.4-1.5x faster than copying through user space, at half the CPU per GB;
# "auto" (option splice-auto) let haproxy's heuristics decide and they hardly ever chose
# to splice: no faster than "off".
SPLICE_OPTIONS: dict[str, tuple[str, ...]] = {
    "off": (),
    "auto": ("    option splice-auto",),
    "always": ("    option splice-request", "    option splice-response"),
}


class HAProxyDataServer(ProxiedDataServer):
    name = "haproxy"

    def __init__(self, state_dir: Path, binary: str = "haproxy", splice: Splice = "always") -> None:
        super().__init__(state_dir, binary)
        if splice not in SPLICE_OPTIONS:
            raise ValueError(f"splice must be one of {', '.join(SPLICE_OPTIONS)}, not {splice!r}")
        self.splice = splice

    def check(self, forwarding: Forwarding) -> None:
        if forwarding.tls_in or forwarding.tls_out:
            raise DataServerError("the haproxy data server forwards plain TCP; TLS legs: stunnel")

    def argv(self, config: Path) -> list[str]:
        return [self.binary, "-db", "-f", str(config)]

    def render(self, forwarding: Forwarding, files: Path) -> str:
        sock = files.with_name(files.name + ".sock")
        lines = [
            "global",
            "    maxconn 4000",
            f"    stats socket {sock} mode 600 level admin",
            "defaults",
            "    mode tcp",
            "    timeout connect 10s",
            f"    timeout client {IDLE_TIMEOUT}",
            f"    timeout server {IDLE_TIMEOUT}",
            "    option tcp-smart-accept",
            *SPLICE_OPTIONS[self.splice],
        ]
        targets = forwarding.targets
        for i, listener in enumerate(forwarding.listeners):
            target = targets[i % len(targets)]
            lines += [
                f"frontend l{i}",
                f"    bind {hostport(listener)}",
                f"    default_backend b{i}",
                f"backend b{i}",
                f"    server t{i} {hostport(target)}",
            ]
        return "\n".join(lines) + "\n"

    async def _command(self, s: ProxySession, command: str) -> str:
        try:
            reader, writer = await asyncio.open_unix_connection(str(s.path(".sock")))
        except OSError as e:
            raise DataServerError(f"haproxy (pid {s.proc.pid}) does not answer: {e}") from e
        try:
            writer.write(command.encode() + b"\n")
            await writer.drain()
            return (await asyncio.wait_for(reader.read(), 5.0)).decode()
        except (OSError, TimeoutError) as e:
            raise DataServerError(f"haproxy (pid {s.proc.pid}) does not answer: {e}") from e
        finally:
            writer.close()

    async def update(self, session: str, targets: tuple[Address, ...]) -> None:
        s = self._get(session)
        if not targets:
            raise DataServerError("no targets to forward to")
        for i in range(len(s.forwarding.listeners)):
            t = targets[i % len(targets)]
            said = await self._command(s, f"set server b{i}/t{i} addr {t.host} port {t.port}")
            if "changed" not in said and "no need to change" not in said:
                raise DataServerError(f"haproxy refused target {t}: {said.strip()}")

    async def read_counters(self, s: ProxySession) -> list[Counters]:
        text = await self._command(s, "show stat")
        rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
        by_frontend = {r["pxname"]: r for r in rows if r.get("svname") == "FRONTEND"}
        out = []
        for i, listener in enumerate(s.forwarding.listeners):
            r = by_frontend.get(f"l{i}", {})
            out.append(
                Counters(
                    listener,
                    int(r.get("stot") or 0),
                    int(r.get("bin") or 0),
                    int(r.get("bout") or 0),
                )
            )
        return out
