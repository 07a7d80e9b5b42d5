"""Submitting runs of the pipelines under the search paths, for the web app and the
command line alike: a config checked against the pipeline's JSON Schema (or Centro's
required fields), its text checked for what would break the template's YAML, the
template rendered in a thread, the run handed to :class:`PipelineRuns`; resume renders
the run's pipeline again with the config it was submitted with.

Nothing is created before the config has passed every check and the template has
rendered: a refused submission leaves no run and no project directory.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

from strato.auth import Principal
from strato.errors import InvalidInput
from strato.pipelines.model.errors import PipelineNotFound
from strato.pipelines.model.pipeline import Pipeline, discover, parse_ref, select
from strato.pipelines.model.render import render
from strato.pipelines.model.workflow import Workflow
from strato.pipelines.records import RunRecord
from strato.pipelines.service import PipelineRuns
from strato.pipelines.settings import PipelinesSettings

# Centro's required fields, for a pipeline that ships no schema of its own.
CENTRO_REQUIRED = ("email", "hpcAccount", "isilonPath", "pipeline", "project")
CENTRO_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": list(CENTRO_REQUIRED),
    "properties": {name: {"type": "string", "minLength": 1} for name in CENTRO_REQUIRED},
}
# A submitted config is data, not a program: deeper than this is no config anyone meant,
# and the renderer and the schema check walk it recursively.
MAX_NESTING = 32
MAX_KEY = 256
# Config values are put into the template's YAML text as they are (Jetstream does the
# same): a line break in a value would start a line of YAML of the submitter's choosing
# (another task, another directive). C0 controls but tab, DEL, C1 controls and the
# characters YAML takes as line breaks (NEL, LINE and PARAGRAPH SEPARATOR) are refused.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
MAX_ATTACHMENT_BYTES = 16 << 20


class Submissions:
    def __init__(
        self,
        runs: PipelineRuns,
        settings: PipelinesSettings,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.runs = runs
        self.settings = settings
        self.projects = runs.projects
        source = os.environ if environ is None else environ
        # Only the variables the administrator named are readable by templates.
        self.environ = {k: source[k] for k in settings.template_env if k in source}

    # --- pipelines ---------------------------------------------------------------------

    def pipelines(self) -> list[Pipeline]:
        """Every pipeline under the search paths, in search order (blocking: the disk)."""
        return discover(self.settings.search_paths).pipelines

    def find(self, ref: str) -> Pipeline:
        try:
            parse_ref(ref)
        except PipelineNotFound:
            raise InvalidInput(f"{ref!r} is no pipeline reference (name@version)") from None
        return select(self.pipelines(), ref)

    # --- submitting ----------------------------------------------------------------------

    async def submit(
        self,
        viewer: Principal,
        config: Mapping[str, Any],
        *,
        ref: str,
        field: str = "pipeline",
        centro: bool = False,
        attachments: Sequence[tuple[str, bytes]] = (),
        annotations: Mapping[str, Any] | None = None,
    ) -> RunRecord:
        """A new run of the pipeline ``ref`` names with ``config``. ``field``: what the
        reference is called in the request, for errors; ``centro``: without a schema of
        its own, the pipeline's config must carry Centro's required fields;
        ``attachments``: files written into the project directory before a task runs;
        ``annotations``: kept with the config (not checked against its schema)."""
        check_config(config)
        check_config(annotations or {})
        pipeline = await asyncio.to_thread(self._find_named, ref, field)
        schema = await asyncio.to_thread(pipeline.schema)
        if schema is None and centro:
            schema = CENTRO_SCHEMA
        if schema is not None:
            validate(config, schema)
        files = [(safe_name(name), data) for name, data in attachments]
        workflow = await asyncio.to_thread(self._render, pipeline, config)
        project = None
        if files:
            project = self.projects / f"wes-{secrets.token_hex(8)}"
            await asyncio.to_thread(_write_files, project, files)
        return await self.runs.submit(
            workflow,
            pipeline=pipeline.ref,
            config={**config, **(annotations or {})},
            submitter=viewer.user or "",
            project=project,
            path=[str(pipeline.bin_dir)] if pipeline.bin_dir else [],
        )

    async def resume(self, viewer: Principal, run_id: str) -> RunRecord:
        """The run again with its pipeline rendered anew from its config, keeping the
        tasks that completed and did not change."""
        run = await self.runs.get(viewer, run_id)
        pipeline = await asyncio.to_thread(self._find_named, run.pipeline, "pipeline")
        workflow = await asyncio.to_thread(self._render, pipeline, run.config)
        return await self.runs.resume(viewer, run_id, workflow)

    def _find_named(self, ref: str, field: str) -> Pipeline:
        if not isinstance(ref, str) or not ref:
            raise InvalidInput(f"{field}: a pipeline as name@version is required")
        try:
            return self.find(ref)
        except (InvalidInput, PipelineNotFound) as exc:
            # A body's field that names nothing is the request's fault (400), not a path
            # that is not there (404).
            raise InvalidInput(
                f"{field}: {exc.detail}", errors=[{"field": field, "message": exc.detail}]
            ) from None

    def _render(self, pipeline: Pipeline, config: Mapping[str, Any]) -> Workflow:
        return render(
            pipeline,
            config,
            exec_pipelines=self.settings.exec_pipelines,
            environ=self.environ,
        )


def check_config(config: Any) -> None:
    """InvalidInput naming the place of the first thing in ``config`` that is no config:
    not an object, nested deeper than MAX_NESTING, a key too long, a control character
    or line break in a key or a text."""
    if not isinstance(config, Mapping):
        raise InvalidInput(f"the config is a JSON {_kind(config)}, not an object")
    _walk(config, "", 0)


def _walk(value: Any, where: str, depth: int) -> None:
    if depth > MAX_NESTING:
        _refuse(where, f"nests deeper than {MAX_NESTING} levels")
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = f"{where}.{key}" if where else str(key)
            if not isinstance(key, str) or len(key) > MAX_KEY:
                _refuse(name[:MAX_KEY], f"keys are text of at most {MAX_KEY} characters")
            if _CONTROL.search(key):
                _refuse(repr(key), "a key holds a control character or line break")
            _walk(item, name, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, f"{where}[{i}]", depth + 1)
    elif isinstance(value, str):
        found = _CONTROL.search(value)
        if found:
            _refuse(
                where,
                f"holds the control character or line break {found.group()!r} at "
                f"{found.start()}: config values are put into the template's YAML as "
                "they are (give several lines as a list)",
            )


def _refuse(where: str, message: str) -> None:
    raise InvalidInput(f"{where}: {message}", errors=[{"field": where, "message": message}])


def validate(config: Mapping[str, Any], schema: dict[str, Any]) -> None:
    """InvalidInput naming the field of each error of ``config`` against ``schema`` (the
    most telling one in the detail)."""
    validator_class = jsonschema.validators.validator_for(schema)
    try:
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InvalidInput(f"the pipeline's config schema is not valid: {exc.message}") from None
    validator = validator_class(schema)
    errors = list(validator.iter_errors(config))
    if not errors:
        return
    listed = [{"field": _field(e), "message": e.message} for e in errors[:20]]
    first = best_match(errors)
    assert first is not None
    raise InvalidInput(f"{_field(first)}: {first.message}", errors=listed)


def _field(error: jsonschema.ValidationError) -> str:
    path = ""
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    if error.validator == "required" and isinstance(error.validator_value, list):
        # The missing property is the field: 'email' is a required property.
        missing = next((n for n in error.validator_value if f"'{n}'" in error.message), None)
        if missing is not None:
            return f"{path}.{missing}" if path else missing
    return path or "(the config)"


def safe_name(name: str) -> str:
    """An attachment's name as a relative path inside the project: no '..', no absolute
    path, no control character."""
    if not name or _CONTROL.search(name) or "\\" in name:
        raise InvalidInput(f"workflow_attachment: {name!r} is no file name")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise InvalidInput(
            f"workflow_attachment: {name!r} leaves the run's directory ('..' or absolute)"
        )
    return str(path)


def _write_files(project: Path, files: Sequence[tuple[str, bytes]]) -> None:
    for name, data in files:
        target = project / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _kind(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )
