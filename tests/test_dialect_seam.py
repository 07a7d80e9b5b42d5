"""No module outside strato.db branches on the database engine or reads a driver's errors.

What differs between engines is in the dialect classes (strato.db.dialects), and bus
backends own their clients; everything else asks them. This reads the source (code only:
comments and docstrings may name engines) and fails naming each line that does it itself.
"""

from __future__ import annotations

import ast
from importlib.metadata import entry_points
from pathlib import Path

import strato

SRC = Path(strato.__file__).parent
# Modules that may name engines and drivers, and why.
ALLOWED: dict[str, str] = {
    "db/": "the database seam itself",
    # Says which extra installs each driver package; it branches on nothing.
    "extras.py": "maps driver packages to the extras that bring them",
}
# Bus backends are to the bus what dialects are to the database: each speaks its own
# client's language (the embedded bus is its own SQLite file).
BUS_BACKENDS = {
    ep.value.partition(":")[0].removeprefix("strato.").replace(".", "/") + ".py"
    for ep in entry_points(group="strato.buses")
}

ENGINE_NAMES = {"sqlite", "postgresql", "postgres", "mysql", "mariadb", "psycopg", "pymysql"}
DRIVER_MODULES = ("sqlite3", "psycopg", "psycopg2", "pymysql", "MySQLdb", "mariadb", "asyncpg")
# Attributes only a driver's errors or an engine object carry.
DRIVER_ATTRIBUTES = {"sqlstate", "pgcode", "sqlite_errorcode", "sqlite_errorname"}
# Texts of driver error messages, lower-cased.
ERROR_TEXTS = (
    "database is locked",
    "database table is locked",
    "deadlock",
    "duplicate key",
    "duplicate entry",
    "unique constraint",
    "lock wait timeout",
    "server has gone away",
    "lost connection",
    "could not connect",
    "no such table",
    "read-only transaction",
    "readonly database",
)


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def offences(source: str) -> list[tuple[int, str]]:
    """``(line, what)`` for each place in ``source`` that names an engine or a driver."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules.append(node.module)
            for module in modules:
                if module.split(".")[0] in DRIVER_MODULES:
                    found.append((line, f"imports driver {module}"))
                if module.startswith("sqlalchemy.dialects"):
                    found.append((line, f"imports an engine's SQLAlchemy dialect ({module})"))
        elif isinstance(node, ast.Attribute):
            inner = node.value
            if node.attr in ("name", "driver") and (
                isinstance(inner, ast.Attribute) and inner.attr == "dialect"
            ):
                found.append((line, f"reads dialect.{node.attr}"))
            elif node.attr in DRIVER_ATTRIBUTES:
                found.append((line, f"reads the driver's {node.attr}"))
            elif node.attr == "get_backend_name":
                found.append((line, "reads the URL's backend name"))
        elif isinstance(node, ast.Name) and node.id in DRIVER_MODULES:
            found.append((line, f"uses driver {node.id}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in docstrings:
                continue
            if node.value in ENGINE_NAMES:
                found.append((line, f"names engine or driver {node.value!r}"))
            text = node.value.lower()
            for error in ERROR_TEXTS:
                if error in text:
                    found.append((line, f"matches the driver's error text {error!r}"))
    return sorted(set(found))


def _allowed(relative: str) -> bool:
    return relative in BUS_BACKENDS or any(
        relative == rule or (rule.endswith("/") and relative.startswith(rule)) for rule in ALLOWED
    )


def test_no_module_outside_the_seams_names_an_engine_or_a_driver() -> None:
    assert {"bus/embedded.py", "bus/nats.py", "bus/kafka.py"} <= BUS_BACKENDS
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if _allowed(relative):
            continue
        for line, what in offences(path.read_text()):
            problems.append(f"src/strato/{relative}:{line}: {what}")
    assert not problems, "engine or driver named outside strato.db:\n" + "\n".join(problems)


# What the seam replaced, as it was written: each must be caught.
FORMER = {
    "apply": 'if conn.dialect.name == "sqlite":\n    pass\n',
    "copy": 'copy = conn.dialect.driver == "psycopg"\n',
    "dialect imports": "from sqlalchemy.dialects import postgresql, sqlite\n",
    "json types": '_JSON_TYPES = {"postgresql": 1, "sqlite": 2, "mysql": 3}\n',
    "paging": 'def nulls_high(dialect: str) -> bool:\n    return dialect == "postgresql"\n',
    "like": 'if dialect == "sqlite" and not casei:\n    pass\n',
    "search": 'dialect = bind.dialect.name if bind is not None else "sqlite"\n',
    "consumer": 'if "database is locked" in str(exc.orig):\n    pass\n',
    "faults": "import sqlite3\nok = isinstance(orig, sqlite3.Error)\n",
    "sqlstate": 'ro = getattr(orig, "sqlstate", None) == "25006"\nro = orig.sqlstate\n',
    "url": 'if target.get_backend_name() == "postgresql":\n    pass\n',
    "bus": 'if scheme not in ("sqlite", "nats", "kafka"):\n    pass\n',
}


def test_the_check_catches_what_the_seam_replaced() -> None:
    for name, source in FORMER.items():
        assert offences(source), name
    # Prose may name engines: comments and docstrings are not code.
    prose = '"""On SQLite a "database is locked" error; PostgreSQL."""\n# psycopg, sqlite3\n'
    assert offences(prose) == []
