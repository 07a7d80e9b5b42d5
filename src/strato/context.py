"""The platform's shared parts, built once from Settings and passed down."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from strato import db
from strato.auth import IdentityStore
from strato.errors import Unavailable
from strato.settings import Settings


@dataclass
class Context:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    identities: IdentityStore

    @classmethod
    def open(cls, settings: Settings) -> Context:
        ensure_data_dir(settings.data_dir)
        engine = db.create_engine(settings.database_url_value)
        sessions = db.session_factory(engine)
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            identities=IdentityStore(sessions),
        )

    def migrate(self) -> None:
        db.upgrade(self.engine)

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
