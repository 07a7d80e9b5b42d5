"""Rendering a pipeline's template into a workflow, as Jetstream renders: Jinja2 with
``StrictUndefined``, ``trim_blocks``/``lstrip_blocks``, the ``do`` extension, templates
included and imported from the pipeline's directory, and Jetstream's helpers; the output is
YAML, a list of tasks or a mapping with ``tasks:``.

Unlike Jetstream, the template runs in Jinja2's sandbox (no attribute of Python's
internals is reachable, ranges and repeated strings are bounded), ``getenv`` reads only
the variables it is handed, and every failure is a :class:`TemplateError` naming the
template file and line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
import traceback
import urllib.parse
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, NoReturn

import jinja2
import yaml
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from strato.pipelines.model.dag import build_workflow
from strato.pipelines.model.errors import ExecNotAllowed, TemplateError
from strato.pipelines.model.pipeline import Pipeline
from strato.pipelines.model.workflow import Workflow

log = logging.getLogger(__name__)

# Rendered text is bounded before YAML parses it (5,000 tasks render to about 1 MB).
MAX_RENDERED_BYTES = 64 << 20
# Values built by `*` in a template are bounded: 'x' * 10**10 would exhaust memory.
MAX_PRODUCT_ITEMS = 10_000_000
# Nodes of the parsed YAML, aliases expanded: a few anchors nest into billions.
MAX_YAML_NODES = 5_000_000

try:  # libyaml's parser: 5 to 10 times faster on thousands of tasks
    _SafeLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _SafeLoader = yaml.SafeLoader


class TemplateRaised(Exception):
    """What ``raise('...')`` in a template raises."""


def merge(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Mappings merged, later layers winning: mappings merged key by key at every depth,
    everything else (lists included) replaced."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            old = out.get(key)
            if isinstance(old, Mapping) and isinstance(value, Mapping):
                out[key] = merge(old, value)
            elif isinstance(value, Mapping):
                out[key] = merge(value)  # copied: a later layer never edits an earlier one
            else:
                out[key] = value
    return out


class _Sandbox(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        if operator == "**":
            if isinstance(right, int) and isinstance(left, int) and abs(right) > 1000:
                raise SecurityError("exponent too large")
            return left**right
        for seq, times in ((left, right), (right, left)):
            if (
                isinstance(seq, (str, bytes, list, tuple))
                and isinstance(times, int)
                and len(seq) * times > MAX_PRODUCT_ITEMS
            ):
                raise SecurityError(f"a repetition of more than {MAX_PRODUCT_ITEMS} items")
        return left * right


def _fromjson(value: str) -> Any:
    return json.loads(value)


def _basename(path: str) -> str:
    return posixpath.basename(path)


def _dirname(path: str) -> str:
    return posixpath.dirname(path)


def _urlparse(value: str) -> urllib.parse.ParseResult:
    return urllib.parse.urlparse(value)


def _sha256(value: Any) -> str:
    return hashlib.sha256(str(value).encode()).hexdigest()


def _md5(value: Any) -> str:
    return hashlib.md5(str(value).encode(), usedforsecurity=False).hexdigest()


@jinja2.pass_context
def _raise(context: jinja2.runtime.Context, message: Any = "raised") -> NoReturn:
    raise TemplateRaised(str(message))


@jinja2.pass_context
def _log(context: jinja2.runtime.Context, message: Any, level: str = "INFO") -> str:
    number = logging.getLevelName(str(level).upper())
    log.log(number if isinstance(number, int) else logging.INFO, "%s: %s", context.name, message)
    return ""


def environment(directory: Path, environ: Mapping[str, str] | None = None) -> jinja2.Environment:
    """The sandboxed environment templates of the pipeline in ``directory`` render in;
    ``getenv`` reads ``environ`` only (default: no variable)."""
    variables = dict(environ or {})

    def getenv(name: str, default: Any = None) -> Any:
        return variables.get(name, default)

    env = _Sandbox(
        loader=jinja2.FileSystemLoader(str(directory), followlinks=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.do"],
        autoescape=False,  # YAML, not HTML
    )
    helpers = {
        "fromjson": _fromjson,
        "basename": _basename,
        "dirname": _dirname,
        "urlparse": _urlparse,
        "sha256": _sha256,
        "md5": _md5,
        "getenv": getenv,
    }
    # Jetstream's helpers are filters ({{ path|basename }}); offered as functions too.
    env.filters.update(helpers)
    env.globals.update(helpers)
    env.globals["raise"] = _raise
    env.globals["log"] = _log
    return env


def _where(exc: BaseException, directory: Path, default: str) -> tuple[str, int | None]:
    """The template file and line an exception was raised at: Jinja2 rewrites tracebacks
    so template frames carry the template's file name and line."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        name = exc.name or (exc.filename and Path(exc.filename).name) or default
        return name, exc.lineno
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        path = Path(frame.filename)
        if path.is_absolute() and path.is_relative_to(directory):
            return path.relative_to(directory).as_posix(), frame.lineno
    return default, None


def render_text(
    pipeline: Pipeline,
    config: Mapping[str, Any] | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The pipeline's main template rendered with project ``defaults`` < the pipeline's
    manifest < ``config``."""
    context = merge(defaults, pipeline.defaults, config)
    env = environment(pipeline.path, environ)
    try:
        template = env.get_template(pipeline.main)
        text = template.render(context)
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"template {exc.name!r} not found in the pipeline") from None
    except TemplateRaised as exc:
        name, line = _where(exc, pipeline.path, pipeline.main)
        raise TemplateError(f"raise(): {exc}", template=name, line=line) from None
    except jinja2.TemplateSyntaxError as exc:
        name, line = _where(exc, pipeline.path, pipeline.main)
        raise TemplateError(f"syntax error: {exc.message}", template=name, line=line) from None
    except jinja2.UndefinedError as exc:
        name, line = _where(exc, pipeline.path, pipeline.main)
        raise TemplateError(f"undefined: {exc.message}", template=name, line=line) from None
    except SecurityError as exc:
        name, line = _where(exc, pipeline.path, pipeline.main)
        raise TemplateError(f"refused by the sandbox: {exc}", template=name, line=line) from None
    except (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as exc:
        # A helper's or an operation's own failure (fromjson of no JSON, 1/0, a missing
        # key of a dict called with []): the template's error, said where.
        name, line = _where(exc, pipeline.path, pipeline.main)
        what = getattr(exc, "message", None) or str(exc)
        raise TemplateError(f"{type(exc).__name__}: {what}", template=name, line=line) from None
    except RecursionError:
        raise TemplateError("recursion too deep", template=pipeline.main) from None
    if len(text) > MAX_RENDERED_BYTES:
        raise TemplateError(
            f"rendered to more than {MAX_RENDERED_BYTES} characters", template=pipeline.main
        )
    return text


def _count_nodes(value: Any, budget: int) -> int:
    """``budget`` less the nodes of ``value`` (aliases counted each time they appear),
    stopping below zero."""
    stack = [value]
    while stack and budget >= 0:
        item = stack.pop()
        budget -= 1
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return budget


def parse_tasks(text: str, template: str) -> tuple[list[Any], dict[str, Any]]:
    """The task list in rendered ``text`` and the other keys of a mapping with ``tasks:``
    (workflow properties)."""
    try:
        document = yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        lines = text.splitlines()
        shown = f": {lines[line - 1].strip()[:200]!r}" if line and line <= len(lines) else ""
        raise TemplateError(
            f"the rendered YAML is invalid at its line {line} ({exc.problem}){shown}",
            template=template,
        ) from None
    except yaml.YAMLError as exc:
        raise TemplateError(f"the rendered YAML is invalid: {exc}", template=template) from None
    if _count_nodes(document, MAX_YAML_NODES) < 0:
        raise TemplateError(
            f"the rendered YAML holds more than {MAX_YAML_NODES} values", template=template
        )
    if document is None:
        return [], {}
    if isinstance(document, dict):
        props = {k: v for k, v in document.items() if k != "tasks"}
        tasks = document.get("tasks")
        if tasks is None:
            tasks = []
        if not isinstance(tasks, list):
            raise TemplateError("'tasks:' is no list of tasks", template=template)
        return tasks, props
    if isinstance(document, list):
        return document, {}
    raise TemplateError(
        f"rendered to a {type(document).__name__}, not a list of tasks or a mapping with 'tasks:'",
        template=template,
    )


def exec_allowed(pipeline: Pipeline, exec_pipelines: Collection[str]) -> bool:
    return pipeline.name in exec_pipelines or pipeline.ref in exec_pipelines


def render(
    pipeline: Pipeline,
    config: Mapping[str, Any] | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
    exec_pipelines: Collection[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Workflow:
    """The workflow the pipeline's template makes of ``config``: TemplateError,
    WorkflowError or ExecNotAllowed (all InvalidInput) naming what is wrong and where.

    ``defaults``: the project's defaults (weakest); ``exec_pipelines``: the names or
    name@versions allowed the ``exec`` directive (PipelinesSettings.exec_pipelines);
    ``environ``: the variables ``getenv`` may read."""
    text = render_text(pipeline, config, defaults=defaults, environ=environ)
    tasks, _props = parse_tasks(text, pipeline.main)
    if not exec_allowed(pipeline, exec_pipelines):
        for task in tasks:
            if isinstance(task, dict) and "exec" in task:
                raise ExecNotAllowed(
                    f"pipeline {pipeline.ref}: task {task.get('name')!r} uses the exec directive, "
                    "which this server allows only for the pipelines in "
                    "[pipelines] exec_pipelines"
                )
    return build_workflow(tasks, source=f"{pipeline.ref} ({pipeline.main})")


__all__ = [
    "environment",
    "exec_allowed",
    "merge",
    "parse_tasks",
    "render",
    "render_text",
]
