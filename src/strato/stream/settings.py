"""The stream section: ``[stream]`` in strato.toml, ``STRATO_STREAM_*``: the control
server's address and TLS, the data ports it hands out, its deadlines and limits, and the
data server backend."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, model_validator

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
