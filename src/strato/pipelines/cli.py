"""`strato pipelines list|show|render`: the pipelines under the search paths, one
pipeline's manifest, and the workflow a config renders to (nothing is run)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from strato.errors import InvalidInput

if TYPE_CHECKING:
    from strato.pipelines.settings import PipelinesSettings

pipelines_app = typer.Typer(
    help="Jetstream-format pipelines: list, show, render here; submit, runs, status, logs, "
    "cancel, resume on a node.",
    no_args_is_help=True,
)

SearchPath = Annotated[
    list[Path] | None,
    typer.Option(
        "--search-path",
        "-p",
        help="Directory searched for pipelines (repeatable); default [pipelines] search_paths.",
    ),
]
VALUE_TYPES = ("str", "int", "float", "bool", "json")


def _settings(ctx: typer.Context) -> PipelinesSettings:
    from strato.cli import CliState
    from strato.pipelines.settings import PipelinesSettings
    from strato.settings import load_settings

    obj = ctx.find_root().obj
    settings = obj.settings() if isinstance(obj, CliState) else load_settings()
    try:
        return PipelinesSettings.of(settings)
    except LookupError:  # the pipelines capability is not switched on: its defaults
        return PipelinesSettings()


def _paths(ctx: typer.Context, given: list[Path] | None) -> list[Path]:
    return list(given) if given else list(_settings(ctx).search_paths)


def typed_value(spec: str, value: str) -> tuple[str, Any]:
    """``-c [type:]key value`` as (key, value): types str (default), int, float, bool,
    json, as Jetstream's kvargs."""
    kind, sep, key = spec.partition(":")
    if not sep:
        kind, key = "str", spec
    if not key:
        raise InvalidInput(f"-c {spec!r}: no key")
    try:
        if kind == "str":
            return key, value
        if kind == "int":
            return key, int(value)
        if kind == "float":
            return key, float(value)
        if kind == "bool":
            lowered = value.strip().lower()
            if lowered in ("true", "yes", "1", "on"):
                return key, True
            if lowered in ("false", "no", "0", "off"):
                return key, False
            raise ValueError("expected true or false")
        if kind == "json":
            return key, json.loads(value)
    except ValueError as exc:
        raise InvalidInput(f"-c {spec} {value!r}: not a {kind}: {exc}") from None
    raise InvalidInput(f"-c {spec!r}: unknown type {kind!r} (types: {', '.join(VALUE_TYPES)})")


def _config_values(args: list[str]) -> dict[str, Any]:
    """The ``-c [type:]key value`` pairs among the arguments click left over."""
    values: dict[str, Any] = {}
    rest = list(args)
    while rest:
        flag = rest.pop(0)
        if flag not in ("-c", "--config-value"):
            raise InvalidInput(f"unexpected argument {flag!r}")
        if len(rest) < 2:
            raise InvalidInput(f"{flag} takes two values: [type:]key value")
        key, value = typed_value(rest.pop(0), rest.pop(0))
        values[key] = value
    return values


def _config_file(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)  # JSON is YAML
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(f"-C {path}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInput(f"-C {path}: the config is no mapping")
    return data


@pipelines_app.command("list")
def list_(
    ctx: typer.Context,
    search_path: SearchPath = None,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON.")] = False,
) -> None:
    """Pipelines under the search paths: name@version and directory, in search order;
    directories whose manifest is invalid are named on standard error."""
    from strato.pipelines.model.pipeline import discover

    found = discover(_paths(ctx, search_path))
    if as_json:
        rows = [
            {"name": p.name, "version": p.version, "path": str(p.path), "main": p.main}
            for p in found.pipelines
        ]
        typer.echo(json.dumps({"pipelines": rows, "problems": found.problems}, indent=2))
        return
    for p in found.pipelines:
        dev = "  (development)" if p.is_development else ""
        typer.echo(f"{p.ref:<32} {p.path}{dev}")
    for problem in found.problems:
        typer.echo(f"invalid: {problem}", err=True)


@pipelines_app.command("show")
def show(
    ctx: typer.Context,
    pipeline: Annotated[
        str, typer.Argument(help="name, name@version, name@latest, name@development")
    ],
    search_path: SearchPath = None,
) -> None:
    """A pipeline's manifest, directory, main template, bin/ and config schema, as JSON."""
    from strato.pipelines.model.pipeline import find

    p = find(_paths(ctx, search_path), pipeline)
    record = {
        "name": p.name,
        "version": p.version,
        "path": str(p.path),
        "main": p.main,
        "development": p.is_development,
        "bin": str(p.bin_dir) if p.bin_dir else None,
        "defaults": {k: v for k, v in p.manifest.items() if k != "__pipeline__"},
        "info": dict(p.info),
        "schema": p.schema(),
    }
    typer.echo(json.dumps(record, indent=2, default=str))


@pipelines_app.command(
    "render",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def render_(
    ctx: typer.Context,
    pipeline: Annotated[
        str, typer.Argument(help="name, name@version, name@latest, name@development")
    ],
    config_file: Annotated[
        Path | None, typer.Option("--config-file", "-C", help="Config (JSON or YAML mapping).")
    ] = None,
    search_path: SearchPath = None,
    as_json: Annotated[bool, typer.Option("--json", help="Tasks and edges as JSON.")] = False,
) -> None:
    """Render a pipeline with a config and print its tasks and edges (nothing runs).

    Values: -C FILE, then -c [TYPE:]KEY VALUE (repeatable; TYPE str, int, float, bool or
    json), which override the file's, which override the pipeline's defaults."""
    from strato.pipelines.model.pipeline import find
    from strato.pipelines.model.render import render

    settings = _settings(ctx)
    paths = list(search_path) if search_path else list(settings.search_paths)
    config = _config_file(config_file) if config_file else {}
    config.update(_config_values(ctx.args))
    p = find(paths, pipeline)
    workflow = render(p, config, exec_pipelines=settings.exec_pipelines, environ=dict(os.environ))
    if as_json:
        tasks = [
            {
                "name": t.name,
                "cmd": t.cmd,
                "cpus": t.cpus,
                "mem_mb": t.mem_mb,
                "walltime_s": t.walltime_s,
                "retry": t.retry,
                "reset": t.reset if isinstance(t.reset, str) else list(t.reset),
                "identity": t.identity,
                "parents": sorted(workflow.parents[t.name]),
                "directives": dict(t.directives),
            }
            for t in workflow.tasks.values()
        ]
        out = {"pipeline": p.ref, "tasks": tasks, "edges": workflow.edges()}
        typer.echo(json.dumps(out, indent=2, default=str))
        return
    typer.echo(f"{p.ref}: {len(workflow.tasks)} tasks, {len(workflow.edges())} edges")
    for t in workflow.tasks.values():
        parents = sorted(workflow.parents[t.name])
        after = f"  after {', '.join(parents)}" if parents else ""
        typer.echo(f"- {t.name}{after}")
        if t.cmd is not None:
            for line in t.cmd.rstrip("\n").splitlines():
                typer.echo(f"    {line}")
    typer.echo("edges:")
    for parent, child in workflow.edges():
        typer.echo(f"  {parent} -> {child}")


def register(app: typer.Typer) -> None:
    app.add_typer(pipelines_app, name="pipelines")
