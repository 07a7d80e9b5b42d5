"""The processes capability's settings section: ``[processes]`` in strato.toml,
``STRATO_PROCESSES_*`` in the environment."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from strato.settings import Section


class ProviderSettings(BaseModel):
    """One provider of processes: the ids starting with ``prefix`` run there."""

    model_config = ConfigDict(extra="forbid")

    prefix: str = Field(
        min_length=1,
        max_length=64,
        description="Process ids starting with it go to this provider ('remote:' or the "
        "glob 'remote:*'); its processes are listed under it.",
    )
    kind: Literal["ogc", "zmq", "celery"] = Field(
        description="ogc: an OGC API - Processes server over HTTP; zmq: `strato endpoint "
        "serve --zmq`; celery: the workers of `strato endpoint serve --celery` on a queue."
    )
    url: str | None = Field(
        None, description="ogc: the API's landing page (https://host/processes-api)."
    )
    token: SecretStr | None = Field(None, description="ogc: a bearer token for the server.")
    address: str | None = Field(None, description="zmq: the server's address (tcp://host:port).")
    server_key: Path | None = Field(
        None, description="zmq: the server's public key file (from `strato endpoint keys`)."
    )
    client_key: Path | None = Field(
        None, description="zmq: this node's own secret key file (name.key_secret)."
    )
    # A secret: the URL may carry the broker's password (masked by `strato config show`).
    broker_url: SecretStr | None = Field(
        None,
        description="celery: the broker (redis://host:port/db or "
        "amqp://user:password@host:port/vhost).",
    )
    queue: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="celery: the queue the endpoint's workers take processes from "
        "(`strato endpoint serve --celery BROKER --queue QUEUE`).",
    )
    strip_prefix: bool = Field(
        True, description="Call the remote process by its id without the prefix."
    )
    timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds one request to it may take (celery: for a worker to answer a "
        "listing or a description).",
    )
    refresh: float = Field(
        60.0, ge=0, description="Seconds its process descriptions are kept before asked again."
    )

    @field_validator("prefix")
    @classmethod
    def _glob(cls, value: str) -> str:
        # Stratus wrote routes as globs ('emas.*'); only a trailing '*' is meant.
        value = value.removesuffix("*")
        if not value or "*" in value or "/" in value:
            raise ValueError("a prefix, or a glob with one trailing '*'")
        return value


class ProcessesSettings(Section):
    key: ClassVar[str] = "processes"

    sync_wait_seconds: float = Field(
        60.0,
        gt=0,
        description="How long a synchronous execution waits for its job; past it the answer "
        "is 201 with the job's status, as an asynchronous one.",
    )
    status_wait_seconds: float = Field(
        30.0,
        ge=0,
        description="Longest a job's status request with `Prefer: wait=N` is held until "
        "the job finishes (a client told of the end without polling); 0 ignores the "
        "preference.",
    )
    fast_job_requests: bool = Field(
        True,
        description="Answer a job's status and results for a token checked lately from "
        "memory before FastAPI's routing (strato.processes.api.fast_jobs); off: FastAPI "
        "answers every request.",
    )
    job_time_limit: float | None = Field(
        None, gt=0, description="Seconds a job may run before the engine stops it; none: no limit."
    )
    page_limit: int = Field(100, ge=1, description="Jobs listed per page when none is asked.")
    max_page_limit: int = Field(1000, ge=1, description="Most jobs one page may list.")
    callbacks: bool = Field(
        True,
        description="Send subscriber callbacks (successUri, inProgressUri, failedUri); off, "
        "an execute request naming them is refused.",
    )
    callback_timeout: float = Field(
        10.0, gt=0, description="Seconds one callback request may take, connection included."
    )
    callback_attempts: int = Field(
        3, ge=1, le=10, description="Tries of one callback before it is given up (logged)."
    )
    callback_concurrency: int = Field(
        16, ge=1, description="Callback requests in flight at once from this node."
    )
    providers: list[ProviderSettings] = Field(
        default_factory=list,
        description="Where process ids go by prefix (the longest matching prefix wins); "
        "the others are this node's own processes. In the environment as JSON.",
    )
