"""The platform's shared parts, built once from Settings and passed down."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from strato import db
from strato.auth import IdentityStore
from strato.settings import Settings


@dataclass
class Context:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    identities: IdentityStore

    @classmethod
    def open(cls, settings: Settings) -> Context:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
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
