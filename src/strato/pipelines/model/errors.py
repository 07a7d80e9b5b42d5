"""The errors of pipelines as data: each names what is wrong and where (the pipeline, the
template file and line, the task), so an API answers a 4xx a user can act on."""

from __future__ import annotations

from strato.errors import InvalidInput, NotFound


class PipelineNotFound(NotFound):
    """No pipeline (or no such version of one) under the search paths."""

    code = "pipeline-not-found"
    title = "Pipeline not found"


class InvalidPipeline(InvalidInput):
    """A pipeline directory that is no pipeline: its manifest is missing, unreadable or
    lacks what a pipeline must declare."""

    code = "invalid-pipeline"
    title = "Invalid pipeline"


class TemplateError(InvalidInput):
    """A template failed to render into tasks: an undefined variable, a syntax error,
    ``raise()``, output that is not YAML, or not a list of tasks."""

    code = "template-error"
    title = "Template error"

    def __init__(self, detail: str, *, template: str | None = None, line: int | None = None):
        where = template or ""
        if template and line:
            where = f"{template}, line {line}"
        super().__init__(f"{where}: {detail}" if where else detail)
        self.template = template
        self.line = line


class WorkflowError(InvalidInput):
    """Rendered tasks that make no workflow: a bad directive, two tasks of one name, a
    dependency on a task that does not exist, a cycle."""

    code = "invalid-workflow"
    title = "Invalid workflow"


class ExecNotAllowed(InvalidInput):
    """A task uses ``exec`` (Python run inside the runner) in a pipeline the administrator
    has not allowed it for."""

    code = "exec-not-allowed"
    title = "exec directive not allowed"
