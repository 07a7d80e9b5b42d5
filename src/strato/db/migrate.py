"""Schema migrations: the core's history and one per capability, each independent.

Each history is a package with a ``versions`` directory of alembic revisions and its own
version table (``alembic_version_<name>``): a capability's schema changes without
touching another's, and one switched off is not migrated at all. All of them run in the
one alembic environment of :mod:`strato.migrations`.

Databases made before, by one chain 0001..0007 recorded in ``alembic_version``, are
adopted on the first upgrade: each history is stamped with what that chain had made of
it (the ``LEGACY`` table of its package) and the old table is dropped; then each history
upgrades from there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import import_module, resources
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from strato.errors import Unavailable

if TYPE_CHECKING:
    from strato.capabilities import Capability

CORE = "core"
LEGACY_TABLE = "alembic_version"


@dataclass(frozen=True)
class History:
    """One schema history: ``package`` holds ``versions/`` and its ``LEGACY`` table."""

    name: str
    package: str

    @property
    def version_table(self) -> str:
        return f"{LEGACY_TABLE}_{self.name}"

    @property
    def legacy(self) -> Mapping[str, str]:
        found: Mapping[str, str] = getattr(import_module(self.package), "LEGACY", {})
        return found


def histories(capabilities: Iterable[Capability] | None = None) -> list[History]:
    """The core's history, then those of ``capabilities`` (default: every installed one
    that loads), in their order."""
    if capabilities is None:
        from strato.capabilities import loadable_capabilities

        capabilities = loadable_capabilities()
    found = [History(CORE, "strato.migrations")]
    for cap in capabilities:
        if cap.migrations is None:
            continue
        if cap.name == CORE:
            raise ValueError("a capability may not be called core: that history is the core's")
        found.append(History(cap.name, cap.migrations))
    return found


def history(name: str) -> History:
    """The history called ``name`` among the core's and the installed capabilities'."""
    for found in histories():
        if found.name == name:
            return found
    raise LookupError(f"no schema history called {name!r}")


def alembic_config(history: History, engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("strato") / "migrations"))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", str(resources.files(history.package) / "versions"))
    cfg.attributes["engine"] = engine
    cfg.attributes["version_table"] = history.version_table
    return cfg


def upgrade(engine: Engine, capabilities: Iterable[Capability] | None = None) -> None:
    """Bring the core's schema and that of ``capabilities`` (default: every installed one)
    to their newest revisions, adopting a database of the former single chain first."""
    chosen = histories(capabilities)
    known = {h.name: h for h in [*histories(), *chosen]}
    adopt_legacy(engine, known.values())
    for found in chosen:
        upgrade_history(engine, found)


def upgrade_history(engine: Engine, history: History, revision: str = "head") -> None:
    command.upgrade(alembic_config(history, engine), revision)


def downgrade_history(engine: Engine, history: History, revision: str) -> None:
    command.downgrade(alembic_config(history, engine), revision)


def adopt_legacy(engine: Engine, known: Iterable[History]) -> None:
    """Stamp each history the former chain had made with its revision, then drop that
    chain's table. Every known history is stamped, switched off or not: what exists is
    recorded, so switching one on later migrates on from there."""
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        if LEGACY_TABLE not in tables:
            return
        query = text(f"SELECT version_num FROM {LEGACY_TABLE}")  # noqa: S608 (a constant)
        legacy = conn.execute(query).scalar()
    stamps: list[tuple[History, str]] = []
    for found in known:
        if legacy is not None and found.name == CORE and legacy not in found.legacy:
            raise Unavailable(
                f"the database's schema is at revision {legacy}, which this strato does not "
                "know: it was written by a newer strato"
            )
        revision = found.legacy.get(legacy) if legacy is not None else None
        # A table there already: an adoption cut short went that far (MariaDB commits
        # each DDL statement on its own, so this cannot be one transaction).
        if revision is not None and found.version_table not in tables:
            stamps.append((found, revision))
    for found, revision in stamps:
        command.stamp(alembic_config(found, engine), revision)
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {LEGACY_TABLE}"))


def revisions(engine: Engine, capabilities: Iterable[Capability] | None = None) -> list[str]:
    """The current revision of each history recorded in the database."""
    found: list[str] = []
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        for h in histories(capabilities):
            if h.version_table not in tables:
                continue
            opts = {"version_table": h.version_table}
            current = MigrationContext.configure(conn, opts=opts).get_current_revision()
            if current is not None:
                found.append(current)
    return found


def heads(capabilities: Iterable[Capability] | None = None) -> list[str]:
    """The newest revision of each history, as the installed code has them."""
    found: list[str] = []
    for h in histories(capabilities):
        head = ScriptDirectory.from_config(alembic_config(h)).get_current_head()
        if head is not None:
            found.append(head)
    return found


def current_revision(
    engine: Engine, capabilities: Iterable[Capability] | None = None
) -> str | None:
    """The database's schema in one line (each history's revision), None when empty."""
    return " ".join(revisions(engine, capabilities)) or None


def head_revision(
    engine: Engine | None = None, capabilities: Iterable[Capability] | None = None
) -> str | None:
    """The newest schema in the same form as :func:`current_revision`."""
    return " ".join(heads(capabilities)) or None
