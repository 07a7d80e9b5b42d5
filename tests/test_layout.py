"""The layout every capability keeps, so that a new one copies a shape and not an accident.

- the service layer (``search/``, ``ingest/``) and the pure ``model/`` packages run
  without the web framework, and ``model/`` without database sessions;
- production code never reaches the demo tooling: only a capability's ``cli.py`` and
  ``capability.py`` (for ``strato up``, ``generate``, ``playground``) and the demo
  packages themselves import a ``demo`` package;
- every capability package of strato has the same top-level rooms;
- no module is over 600 lines.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
STRATO = SRC / "strato"
MAX_LINES = 600

# package -> top-level modules whose presence in sys.modules after importing every module
# of the package breaks the layout.
WITHOUT: dict[str, tuple[str, ...]] = {
    "strato.catalog.search": ("fastapi", "starlette"),
    "strato.catalog.ingest": ("fastapi", "starlette"),
    "strato.catalog.model": ("fastapi", "starlette", "sqlalchemy.orm"),
    "strato.data.model": ("fastapi", "starlette", "sqlalchemy.orm"),
}

# Each capability package has these rooms: directories are packages, the rest modules.
SHAPE = (
    "model/",
    "api/",
    "web/",
    "demo/",
    "migrations/",
    "settings.py",
    "cli.py",
    "capability.py",
)

_IMPORTS_OF = """
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
for found in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    importlib.import_module(found.name)
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("package", sorted(WITHOUT))
def test_service_and_model_packages_import_no_web_framework(package: str) -> None:
    # A fresh interpreter: in this one, other tests have imported everything already.
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTS_OF, package],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert package in loaded
    for banned in WITHOUT[package]:
        pulled = [m for m in loaded if m == banned or m.startswith(banned + ".")]
        assert not pulled, f"importing {package} imports {banned} ({pulled[0]})"


def _modules() -> list[Path]:
    return sorted(STRATO.rglob("*.py"))


def _name_of(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path) -> set[str]:
    name = _name_of(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return _imports_in(path.read_text("utf-8"), package)


def _imports_in(source: str, package: str) -> set[str]:
    """Every module ``source`` imports, at the top or inside a function, by its full name."""
    tree = ast.parse(source)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # ``from strato.catalog import demo`` names the package in the alias.
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.startswith("strato.")
            and " " not in node.value
        ):
            found.add(node.value.partition(":")[0])  # importlib and entry-point style names
    return found


def _may_reach_demo(path: Path) -> bool:
    name = _name_of(path)
    if "demo" in name.split("."):
        return True  # a demo package and its modules
    return path.name in ("cli.py", "capability.py") and path.parent != STRATO


def test_no_production_module_imports_a_demo_package() -> None:
    offenders = []
    for path in _modules():
        if _may_reach_demo(path):
            continue
        demo = sorted(m for m in _imported(path) if "demo" in m.split("."))
        if demo:
            offenders.append(f"{path.relative_to(SRC)} imports {', '.join(demo)}")
    assert not offenders, "\n".join(offenders)


def test_the_demo_check_sees_a_lazy_import() -> None:
    # The check above must be able to fail: a function-level import is found, a relative
    # one too, and a capability's cli.py may import its demo while its service may not.
    assert not _may_reach_demo(STRATO / "data" / "service.py")
    assert _may_reach_demo(STRATO / "data" / "cli.py")
    assert _may_reach_demo(STRATO / "catalog" / "demo" / "generator.py")
    assert not _may_reach_demo(STRATO / "cli.py")
    source = """
def f():
    from .demo.ensure import ensure_demo
    from strato.catalog import demo
    importlib.import_module("strato.catalog.demo.playground")
"""
    assert _imports_in(source, "strato.data") >= {
        "strato.data.demo.ensure",
        "strato.catalog.demo",
        "strato.catalog.demo.playground",
    }


def _capability_packages() -> dict[str, str]:
    found = {}
    for ep in entry_points(group="strato.capabilities"):
        if ep.dist is not None and ep.dist.name != "strato":
            continue  # another distribution's capability keeps its own house
        found[ep.name] = ep.module.rpartition(".")[0]
    return found


def test_capabilities_are_found_through_their_entry_points() -> None:
    assert {"catalog", "data"} <= set(_capability_packages())


@pytest.mark.parametrize("name", sorted(_capability_packages()))
def test_every_capability_has_the_same_shape(name: str) -> None:
    package = _capability_packages()[name]
    spec = importlib.util.find_spec(package)
    assert spec is not None, package
    assert spec.submodule_search_locations, package
    root = Path(next(iter(spec.submodule_search_locations)))
    missing = []
    for room in SHAPE:
        if room.endswith("/"):
            if not (root / room / "__init__.py").is_file():
                missing.append(room)
        elif not (root / room).is_file():
            missing.append(room)
    assert not missing, f"{package} lacks {', '.join(missing)}"


def test_no_module_is_over_600_lines() -> None:
    long = []
    for path in _modules():
        lines = len(path.read_text("utf-8").splitlines())
        if lines > MAX_LINES:
            long.append(f"{path.relative_to(SRC)}: {lines} lines")
    assert not long, "split by concern:\n" + "\n".join(long)
