"""Small pipelines written into temporary directories for the model's tests."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import yaml


def make_pipeline(
    root: Path,
    name: str = "demo",
    version: Any = "1.0.0",
    *,
    main: str = "main.jst",
    template: str = "- name: hello\n  cmd: echo hello\n",
    defaults: dict[str, Any] | None = None,
    files: dict[str, str] | None = None,
    info: dict[str, Any] | None = None,
    directory: str | None = None,
) -> Path:
    """A pipeline directory under ``root`` (named name-version unless ``directory``)."""
    path = root / (directory or f"{name}-{version}")
    path.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"__pipeline__": {"name": name, "version": version, **(info or {})}}
    if main != "main.jst":
        manifest["__pipeline__"]["main"] = main
    manifest.update(defaults or {})
    (path / "pipeline.yaml").write_text(yaml.safe_dump(manifest))
    (path / main).write_text(textwrap.dedent(template))
    for rel, text in (files or {}).items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(textwrap.dedent(text))
    return path
