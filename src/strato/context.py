"""The platform's shared parts, built once from Settings and passed down.

Capabilities take what they share from here, never from each other: the database
engine and sessions, the identities, the event bus, and what one capability offers the
others (the served datasets, the job engine)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from strato import db
from strato.auth import IdentityStore
from strato.errors import Unavailable
from strato.settings import Settings

if TYPE_CHECKING:
    from strato.analytics import Analytics
    from strato.bus import Bus
    from strato.dataset_sources import DatasetSource
    from strato.job_engine import JobEngine, Schedules


@dataclass
class Context:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    identities: IdentityStore
    # This process only answers requests: background consumers run elsewhere
    # (`strato api` behind a load balancer, `strato consumer` beside it).
    serve_only: bool = False
    # Set by the capability that serves datasets, read by those describing them.
    datasets: DatasetSource | None = None
    # Set by the capability that runs jobs, used by those submitting them.
    jobs: JobEngine | None = None
    # Set by the same capability: periodic jobs, for those scheduling them (pipelines).
    schedules: Schedules | None = None
    # Set by the capability running analytic processes, used by data's diagnostics;
    # installed after data, so read when a request comes, not at install time.
    analytics: Analytics | None = None
    _bus: Bus | None = field(default=None, repr=False)

    @property
    def bus(self) -> Bus:
        """The node's event bus (one per Context, made on first use, not connected: its
        user connects it with ``async with`` or ``start()``, and may reconnect it)."""
        if self._bus is None:
            from strato.bus import open_bus

            self._bus = open_bus(self.settings.bus.url, self.settings.data_dir)
        return self._bus

    def provide_datasets(self, source: DatasetSource) -> None:
        """Offer the datasets this node serves to the capabilities installed after it.
        Each web app built on this Context installs its own service, which replaces the
        one before: apps already built keep the one they were given."""
        self.datasets = source

    def provide_analytics(self, analytics: Analytics) -> None:
        """Offer analytic processes (climatologies) to the capabilities that use
        them (as :meth:`provide_datasets`)."""
        self.analytics = analytics

    def provide_jobs(self, engine: JobEngine) -> None:
        """Offer the job engine to the capabilities installed after it (as
        :meth:`provide_datasets`: each web app built on this Context installs its own)."""
        self.jobs = engine

    def provide_schedules(self, schedules: Schedules) -> None:
        """Offer periodic jobs to the capabilities installed after it (as
        :meth:`provide_jobs`)."""
        self.schedules = schedules

    @classmethod
    def open(cls, settings: Settings) -> Context:
        ensure_data_dir(settings.data_dir)
        engine = db.create_engine(settings.database_url_value, settings.database_pool_size)
        sessions = db.session_factory(engine)
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            identities=IdentityStore(
                sessions, token_cache_seconds=settings.auth.token_cache_seconds
            ),
        )

    def migrate(self) -> None:
        """Bring the core's schema and that of every capability switched on up to date."""
        from strato.capabilities import load_capabilities
        from strato.db.migrate import upgrade

        upgrade(self.engine, load_capabilities(self.settings))

    def schema(self) -> str | None:
        """The database's schema revisions (the core's and each switched-on capability's)."""
        from strato.capabilities import load_capabilities
        from strato.db.migrate import current_revision

        return current_revision(self.engine, load_capabilities(self.settings))

    def schema_head(self) -> str | None:
        """What :meth:`schema` is once migrated, as the installed code has it."""
        from strato.capabilities import load_capabilities
        from strato.db.migrate import head_revision

        return head_revision(self.engine, load_capabilities(self.settings))

    def close(self) -> None:
        self.engine.dispose()


def ensure_data_dir(path: Path) -> None:
    """Create the data directory if it is missing; a path that cannot be one is named."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Unavailable(
            f"data directory {path} cannot be created: {exc.strerror}; "
            "choose another with --data-dir or STRATO_DATA_DIR"
        ) from None


def require_writable_data_dir(path: Path) -> None:
    """Refuse to start on a data directory that cannot be written, naming it."""
    problem = data_dir_problem(path)
    if problem is not None:
        raise Unavailable(
            f"{problem} ({path}); make it writable or choose another with --data-dir "
            "or STRATO_DATA_DIR"
        )


def data_dir_problem(path: Path) -> str | None:
    """Why files cannot be written in ``path`` now, or None when they can.

    A file is really created and removed: access() says yes to root on a read-only
    mount, and permissions are not the only reason a write fails (a full disk)."""
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".strato-probe-"):
            pass
    except FileNotFoundError:
        return "data directory does not exist"
    except OSError as exc:
        reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else type(exc).__name__)
        return f"data directory is not writable: {reason}"
    return None
