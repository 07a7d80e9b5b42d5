"""The stunnel data server: Debian's stunnel4, one process per session in the foreground,
a service per listener. stunnel puts TLS on exactly one side of each service: a session
whose listeners accept TLS (``tls_in``) runs it as a server, one that dials a peer gateway
over TLS (``tls_out``) as a client. Plain-to-plain is the builtin or haproxy data server's.

Legs are TLS 1.3 with AES-GCM suites only, and the peer's certificate is pinned
(``verifyPeer``: it must be that certificate, not one a CA vouches for). The session's
certificate and key are written 0600 into the state directory and removed on close.

Counters come from stunnel's log: connections as they are accepted, bytes when a
connection closes (stunnel reports no running totals).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

from strato.stream.dataserver.base import (
    Address,
    Counters,
    DataServerError,
    Forwarding,
    TlsLeg,
)
from strato.stream.dataserver.proxied import ProxiedDataServer, ProxySession, hostport

SUITES = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"
IDLE_TIMEOUT = 365 * 24 * 3600  # stunnel's default cuts an idle connection after 12 h
_ACCEPTED = re.compile(r"\[(\d+)\]: Service \[l(\d+)\] accepted connection")
_CLOSED = re.compile(
    r"\[(\d+)\]: Connection closed: (\d+) byte\(s\) sent to TLS, (\d+) byte\(s\) sent to socket"
)


class StunnelDataServer(ProxiedDataServer):
    name = "stunnel"

    def __init__(self, state_dir: Path, binary: str = "stunnel4") -> None:
        super().__init__(state_dir, binary)

    def check(self, forwarding: Forwarding) -> None:
        if (forwarding.tls_in is None) == (forwarding.tls_out is None):
            raise DataServerError(
                "the stunnel data server needs TLS on exactly one leg (tls_in or tls_out)"
            )

    def argv(self, config: Path) -> list[str]:
        return [self.binary, str(config)]

    def _leg(self, forwarding: Forwarding) -> tuple[TlsLeg, bool]:
        if forwarding.tls_in is not None:
            return forwarding.tls_in, False
        assert forwarding.tls_out is not None
        return forwarding.tls_out, True

    def render(self, forwarding: Forwarding, files: Path) -> str:
        leg, client = self._leg(forwarding)
        paths = {}
        for suffix, pem in (
            (".cert.pem", leg.cert_pem),
            (".key.pem", leg.key_pem),
            (".peer.pem", leg.peer_cert_pem),
        ):
            path = files.with_name(files.name + suffix)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
            paths[suffix] = path
        lines = [
            "foreground = yes",
            "pid =",
            "debug = notice",
            f"output = {files.with_name(files.name + '.log')}",
            "syslog = no",
        ]
        for i, listener in enumerate(forwarding.listeners):
            target = forwarding.targets[i % len(forwarding.targets)]
            lines += [
                f"[l{i}]",
                f"client = {'yes' if client else 'no'}",
                f"accept = {hostport(listener)}",
                f"connect = {hostport(target)}",
                f"cert = {paths['.cert.pem']}",
                f"key = {paths['.key.pem']}",
                f"CAfile = {paths['.peer.pem']}",
                "verifyPeer = yes",
                "sslVersion = TLSv1.3",
                f"ciphersuites = {SUITES}",
                f"TIMEOUTidle = {IDLE_TIMEOUT}",
                "socket = l:TCP_NODELAY=1",
                "socket = r:TCP_NODELAY=1",
            ]
        return "\n".join(lines) + "\n"

    async def update(self, session: str, targets: tuple[Address, ...]) -> None:
        s = self._get(session)
        if not targets:
            raise DataServerError("no targets to forward to")
        s.forwarding = Forwarding(
            s.forwarding.session,
            s.forwarding.listeners,
            targets,
            s.forwarding.tls_in,
            s.forwarding.tls_out,
        )
        s.path(".conf").write_text(self.render(s.forwarding, s.files))
        # stunnel reads its configuration again on SIGHUP; open connections stay.
        s.proc.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.1)

    async def read_counters(self, s: ProxySession) -> list[Counters]:
        _, client = self._leg(s.forwarding)
        n = len(s.forwarding.listeners)
        connections, bytes_in, bytes_out = [0] * n, [0] * n, [0] * n
        service: dict[str, int] = {}
        try:
            text = await asyncio.to_thread(s.path(".log").read_text, errors="replace")
        except OSError:
            text = ""
        for line in text.splitlines():
            if m := _ACCEPTED.search(line):
                i = int(m.group(2))
                if i < n:
                    service[m.group(1)] = i
                    connections[i] += 1
            elif (m := _CLOSED.search(line)) and m.group(1) in service:
                i = service.pop(m.group(1))
                to_tls, to_socket = int(m.group(2)), int(m.group(3))
                # The listener's clients are on the plain side of a client-mode service.
                out_, in_ = (to_socket, to_tls) if client else (to_tls, to_socket)
                bytes_in[i] += in_
                bytes_out[i] += out_
        return [
            Counters(listener, connections[i], bytes_in[i], bytes_out[i])
            for i, listener in enumerate(s.forwarding.listeners)
        ]
