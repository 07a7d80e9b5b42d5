"""Pipelines on disk: a directory with a ``pipeline.yaml`` manifest, found under the
configured search paths and selected as ``name``, ``name@version``, ``name@latest`` or
``name@development``.

The manifest::

    __pipeline__:
      name: hello            # letters, digits, '_', '-', '.'
      version: 1.2.0         # PEP 440 for @latest; 'development' for @development
      main: main.jst         # the template rendered; default main.jst
      schema: config.schema.json   # optional; default config.schema.json if present
    greeting: hello          # every other key: a template default

A ``bin/`` directory in the pipeline is put first on ``PATH`` when its tasks run.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from packaging.version import InvalidVersion, Version

from strato.pipelines.model.errors import InvalidPipeline, PipelineNotFound

log = logging.getLogger(__name__)

MANIFEST = "pipeline.yaml"
DEFAULT_MAIN = "main.jst"
DEFAULT_SCHEMA = "config.schema.json"
DEVELOPMENT = "development"
LATEST = "latest"
# Manifests and schemas are small documents: bounded before they are parsed.
MAX_MANIFEST_BYTES = 1 << 20
# How deep under a search path pipelines are looked for: <path>/<name>/ and
# <path>/<name>/<version>/ layouts are both common.
SEARCH_DEPTH = 3

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+!-]*$")


@dataclass(frozen=True)
class Pipeline:
    name: str
    version: str
    path: Path  # the pipeline's directory, resolved
    main: str  # the main template, relative to path
    manifest: Mapping[str, Any] = field(repr=False)  # the whole manifest as written
    schema_file: str | None = None  # relative to path

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def info(self) -> Mapping[str, Any]:
        info = self.manifest.get("__pipeline__")
        return info if isinstance(info, Mapping) else {}

    @property
    def defaults(self) -> dict[str, Any]:
        """The manifest as template context (Jetstream hands templates the whole manifest,
        ``__pipeline__`` included)."""
        return dict(self.manifest)

    @property
    def bin_dir(self) -> Path | None:
        path = self.path / "bin"
        return path if path.is_dir() else None

    @property
    def is_development(self) -> bool:
        return self.version == DEVELOPMENT or self.info.get("development") is True

    def release(self) -> Version | None:
        """The version as PEP 440, None for one that is not (or is 'development')."""
        try:
            return Version(self.version)
        except InvalidVersion:
            return None

    def schema(self) -> dict[str, Any] | None:
        """The JSON Schema of the config, if the pipeline ships one."""
        if self.schema_file is None:
            return None
        path = _inside(self.path, self.schema_file, what="schema")
        try:
            schema = json.loads(_read_bounded(path))
        except (OSError, ValueError) as exc:
            raise InvalidPipeline(
                f"pipeline {self.ref}: schema {self.schema_file}: {exc}"
            ) from None
        if not isinstance(schema, dict):
            raise InvalidPipeline(f"pipeline {self.ref}: schema {self.schema_file} is no object")
        return schema

    def task_env(self, path: str | None = None) -> dict[str, str]:
        """Variables a task of this pipeline runs with (Jetstream's names), ``bin/`` first
        on ``PATH`` (``path``: the PATH it is put before; default this process's)."""
        env = {
            "JS_PIPELINE_PATH": str(self.path),
            "JS_PIPELINE_NAME": self.name,
            "JS_PIPELINE_VERSION": self.version,
        }
        if self.bin_dir is not None:
            rest = os.environ.get("PATH", "") if path is None else path
            env["PATH"] = f"{self.bin_dir}{os.pathsep}{rest}" if rest else str(self.bin_dir)
        return env


def _read_bounded(path: Path) -> str:
    with path.open("rb") as f:
        data = f.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise ValueError(f"larger than {MAX_MANIFEST_BYTES} bytes")
    return data.decode("utf-8")


def _inside(root: Path, relative: str, *, what: str) -> Path:
    """``relative`` under ``root``, refusing paths that leave it."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise InvalidPipeline(f"{root / MANIFEST}: {what} {relative!r} is outside the pipeline")
    return path


def load_pipeline(directory: Path) -> Pipeline:
    """The pipeline in ``directory``; InvalidPipeline naming the directory and what is
    wrong with its manifest."""
    root = directory.resolve()
    manifest_path = root / MANIFEST
    try:
        manifest = yaml.safe_load(_read_bounded(manifest_path))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise InvalidPipeline(f"{manifest_path}: {exc}") from None
    if not isinstance(manifest, dict):
        raise InvalidPipeline(f"{manifest_path}: the manifest is no mapping")
    info = manifest.get("__pipeline__")
    if not isinstance(info, dict):
        raise InvalidPipeline(f"{manifest_path}: no __pipeline__ mapping")
    name, version = info.get("name"), info.get("version")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidPipeline(
            f"{manifest_path}: __pipeline__.name {name!r} is not a name "
            "(letters, digits, '_', '-', '.')"
        )
    if isinstance(version, (int, float)) and not isinstance(version, bool):
        version = str(version)  # version: 1.0 in YAML is a float
    if not isinstance(version, str) or not VERSION_RE.match(version):
        raise InvalidPipeline(f"{manifest_path}: __pipeline__.version {version!r} is not a version")
    main = info.get("main", DEFAULT_MAIN)
    if not isinstance(main, str) or not main:
        raise InvalidPipeline(f"{manifest_path}: __pipeline__.main {main!r} is not a file name")
    if not _inside(root, main, what="main template").is_file():
        raise InvalidPipeline(f"{manifest_path}: main template {main!r} does not exist")
    schema = info.get("schema")
    if schema is None:
        schema = DEFAULT_SCHEMA if (root / DEFAULT_SCHEMA).is_file() else None
    elif not isinstance(schema, str) or not _inside(root, schema, what="schema").is_file():
        raise InvalidPipeline(f"{manifest_path}: schema {schema!r} does not exist")
    return Pipeline(name, version, root, main, manifest, schema)


@dataclass
class Found:
    """What a search found: the pipelines in search order, and directories that hold a
    manifest but are no valid pipeline (with why)."""

    pipelines: list[Pipeline] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _pipeline_dirs(root: Path, depth: int) -> Iterator[Path]:
    if (root / MANIFEST).is_file():
        yield root  # a pipeline's own subdirectories are its files, not other pipelines
        return
    if depth == 0:
        return
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return
    for child in children:
        yield from _pipeline_dirs(child, depth - 1)


def discover(search_paths: Iterable[Path]) -> Found:
    """Every pipeline under ``search_paths``, in order (a search path may itself be a
    pipeline's directory)."""
    found = Found()
    for root in search_paths:
        for directory in _pipeline_dirs(Path(root).expanduser(), SEARCH_DEPTH):
            try:
                found.pipelines.append(load_pipeline(directory))
            except InvalidPipeline as exc:
                log.warning("skipped %s", exc.detail)
                found.problems.append(exc.detail)
    return found


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``name[@version]`` split; InvalidInput-style errors for what is no reference."""
    name, _, version = ref.partition("@")
    if not NAME_RE.match(name) or (version and not VERSION_RE.match(version)) or ref.endswith("@"):
        raise PipelineNotFound(f"{ref!r} is no pipeline reference (name, name@version)")
    return name, version or None


def _latest(candidates: Sequence[Pipeline]) -> Pipeline | None:
    releases = [(v, p) for p in candidates if (v := p.release()) is not None]
    # Final releases win over pre-releases; pre-releases are chosen only when there is
    # nothing else. max() keeps the first of equal versions: search order decides.
    finals = [(v, p) for v, p in releases if not (v.is_prerelease or v.is_devrelease)]
    pool = finals or releases
    if not pool:
        return None
    best = max(v for v, _ in pool)
    return next(p for v, p in pool if v == best)


def select(pipelines: Sequence[Pipeline], ref: str) -> Pipeline:
    """The pipeline ``ref`` names among ``pipelines`` (in search order: the first holding
    a name@version wins). ``name`` and ``name@latest``: the highest PEP 440 version (final
    releases before pre-releases); ``name@development``: the one whose version is
    'development' or whose manifest says ``development: true``; ``name@1.2``: that version
    exactly as written, or any PEP 440-equal one (1.2 and 1.2.0)."""
    name, version = parse_ref(ref)
    same = [p for p in pipelines if p.name == name]
    if not same:
        names = sorted({p.name for p in pipelines})
        known = ", ".join(names) if names else "none"
        raise PipelineNotFound(f"no pipeline named {name!r} (pipelines: {known})")
    chosen: Pipeline | None
    if version is None or version == LATEST:
        chosen = _latest([p for p in same if not p.is_development])
    elif version == DEVELOPMENT:
        chosen = next((p for p in same if p.is_development), None)
    else:
        chosen = next((p for p in same if p.version == version), None)
        if chosen is None:
            try:
                wanted = Version(version)
            except InvalidVersion:
                wanted = None
            chosen = next((p for p in same if wanted is not None and p.release() == wanted), None)
    if chosen is None:
        versions = ", ".join(dict.fromkeys(p.version for p in same))
        raise PipelineNotFound(
            f"pipeline {name!r} has no version {version or LATEST!r} (versions: {versions})"
        )
    return chosen


def find(search_paths: Iterable[Path], ref: str) -> Pipeline:
    """The pipeline ``ref`` names under ``search_paths``."""
    return select(discover(search_paths).pipelines, ref)
