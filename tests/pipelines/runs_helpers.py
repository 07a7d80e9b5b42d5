"""Run services on a real database for the runs' tests: workflows built directly (what
the renderer makes), a service per server, waiting bounded."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from strato.auth import Principal, Scope
from strato.db import create_engine
from strato.db.migrate import History, upgrade_history
from strato.pipelines.backends.local import LocalBackend
from strato.pipelines.model.workflow import TaskSpec, Workflow
from strato.pipelines.resources import Resources
from strato.pipelines.service import PipelineRuns
from strato.pipelines.store import RunStore
from strato.retry import Backoff
from tests.conftest import empty_database

PATIENCE = 60.0
ALICE = Principal(user="alice", scopes=frozenset({Scope.READ, Scope.RUN}))
BOB = Principal(user="bob", scopes=frozenset({Scope.READ, Scope.RUN}))
ADMIN = Principal(user="root", scopes=frozenset({Scope.ADMIN}))
HISTORY = History("pipelines", "strato.pipelines.migrations")


def task(name: str, cmd: str | None = "true", **directives: Any) -> TaskSpec:
    identity = hashlib.sha256(f"{cmd}\0{directives.get('stdin')}".encode()).hexdigest()
    return TaskSpec(name=name, cmd=cmd, identity=identity, directives={"name": name}, **directives)


def workflow(tasks: Iterable[TaskSpec], parents: Mapping[str, Iterable[str]] = {}) -> Workflow:
    specs = {t.name: t for t in tasks}
    return Workflow(
        tasks=specs,
        parents={name: frozenset(parents.get(name, ())) for name in specs},
    )


def open_store(url: str) -> RunStore:
    engine = create_engine(url)
    upgrade_history(engine, HISTORY)
    return RunStore(engine)


def service(url: str, root: Path, **options: Any) -> PipelineRuns:
    """A server's run service on the database at ``url``."""
    resources = options.pop("resources", Resources(cpus=4, mem_mb=4096))
    return PipelineRuns(
        open_store(url),
        LocalBackend(kill_grace=0.5),
        projects=root / "projects",
        resources=resources,
        backoff=Backoff(0.05, 0.2),
        **options,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: SQLite in a file, or the test server's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    url: str = request.getfixturevalue("postgres_server_url")
    empty_database(url)
    return url
