"""The stream section: ``[stream]`` in strato.toml, ``STRATO_STREAM_*``: the control
server's address and TLS, the data ports it hands out, its deadlines and limits, and the
data server backend."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator

from strato.settings import Section
from strato.stream.model.manager import Limits


class StreamSettings(Section):
    key: ClassVar[str] = "stream"

    listen: str = Field(
        "127.0.0.1:5000", description="host:port the control server (gRPC) listens on."
    )
    data_host: str = Field(
        "127.0.0.1", description="Address the data server's listeners bind on this gateway."
    )
    advertise_host: str | None = Field(
        None,
        description="Address clients are told to reach the listeners at (the gateway's "
        "address as the other facility sees it); default data_host.",
    )
    port_first: int = Field(5100, ge=1, le=65535, description="First data port handed out.")
    port_last: int = Field(5200, ge=1, le=65535, description="Last data port handed out.")
    hello_deadline: float = Field(
        30.0, gt=0, description="Seconds a req waits for its hello (and a hello for its req)."
    )
    ttl: float = Field(
        3600.0,
        gt=0,
        description="Seconds after which a session with no traffic and no owner action is "
        "released.",
    )
    sweep_interval: float = Field(
        5.0, gt=0, description="Seconds between looks for idle sessions and dead forwarders."
    )
    max_num_conn: int = Field(64, ge=1, le=1024, description="The most listeners one req gets.")
    max_sessions: int = Field(1000, ge=1, description="The most live sessions at once.")
    max_pending_hellos: int = Field(
        1000, ge=1, description="The most hellos waiting for their req at once."
    )
    max_message_bytes: int = Field(
        64 * 1024, ge=1024, description="The largest gRPC message accepted."
    )
    tls_cert: Path | None = Field(
        None, description="PEM certificate of the control server (strato stream cert)."
    )
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert.")
    insecure: bool = Field(
        False,
        description="Serve without TLS (development; SciStream's --ssl=False). Without it, "
        "tls_cert and tls_key are required.",
    )
    backend: str = Field("builtin", description="The data server: builtin, haproxy or stunnel.")
    warm_forwarders: int = Field(
        1,
        ge=0,
        le=64,
        description="builtin backend: forwarder processes started ahead of their sessions, so a "
        "session's setup does not wait for Python to start (0: start each when needed).",
    )
    state_dir: Path | None = Field(
        None,
        description="Where the data server keeps its per-session files and the markers that "
        "find a previous control server's forwarders; default <data_dir>/stream.",
    )
    leg_tls: bool = Field(
        True,
        description="The gateway-to-gateway leg is TLS 1.3 with per-session certificates "
        "exchanged through the control plane. false: plaintext, which works only when the "
        "peer gateway is configured so too (and with SciStream's own client).",
    )
    introspection_url: str | None = Field(
        None,
        description="OAuth2 token introspection endpoint (RFC 7662), e.g. Globus Auth's "
        "https://auth.globus.org/v2/oauth2/token/introspect: tokens that are not strato "
        "tokens are checked there. https (http on loopback only). None: strato tokens only.",
    )
    introspection_client_id: str | None = Field(
        None, description="This gateway's client id at the authorization server."
    )
    introspection_client_secret: SecretStr | None = Field(
        None, description="Its client secret (HTTP Basic to the introspection endpoint)."
    )
    introspection_scope: str | None = Field(
        None,
        description="The scope an introspected token must hold (e.g. the gateway's Globus "
        "scope); None: any active token of the authorization server.",
    )
    introspection_audience: str | None = Field(
        None, description="If set, the introspection answer's aud must name it."
    )
    introspection_identity: Literal["sub", "username"] = Field(
        "sub",
        description="The answer's claim that names the caller (sessions belong to "
        "oauth2:<it>); the other one if it is missing.",
    )
    introspection_cache_seconds: float = Field(
        60.0, ge=0, le=3600, description="Seconds an introspection answer is reused."
    )
    introspection_cache_size: int = Field(
        10_000, ge=0, le=1_000_000, description="The most introspection answers kept."
    )
    introspection_timeout: float = Field(
        5.0, gt=0, le=60, description="Seconds to wait for the introspection endpoint."
    )
    serve_in_up: bool = Field(
        False,
        description="Run the control server inside `strato up` (with the web app); off: "
        "`strato stream serve` runs it.",
    )

    @model_validator(mode="after")
    def _check(self) -> StreamSettings:
        if self.port_first > self.port_last:
            raise ValueError(f"port_first {self.port_first} is above port_last {self.port_last}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.introspection_url is not None:
            _check_introspection_url(self.introspection_url)
            if not self.introspection_client_id or self.introspection_client_secret is None:
                raise ValueError(
                    "introspection_url needs introspection_client_id and "
                    "introspection_client_secret (the gateway's client at the authorization "
                    "server)"
                )
        return self

    def limits(self) -> Limits:
        return Limits(
            hello_deadline=self.hello_deadline,
            ttl=self.ttl,
            max_num_conn=self.max_num_conn,
            max_sessions=self.max_sessions,
            max_pending_hellos=self.max_pending_hellos,
            max_addresses=max(self.max_num_conn, 64),
        )


def _check_introspection_url(url: str) -> None:
    """https, or http to this machine only: tokens and the client secret travel in it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and host:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if loopback:
            return
    raise ValueError(
        f"introspection_url {url!r}: expected an https:// URL (http:// only on loopback)"
    )
