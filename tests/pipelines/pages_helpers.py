"""A `strato api` for the pipelines pages' tests: hello (no schema: Centro's fields),
slow (a task that sleeps), samples (a schema with a dataFiles list, a task per sample)
and a pipeline whose manifest and schema carry markup no page may run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from strato.auth import Scope
from strato.context import Context
from strato.settings import LogSettings, Settings
from tests.pipelines.conftest import HELLO, HELLO_MAIN, SLOW, SLOW_MAIN, Node, write_pipeline
from tests.served import strato_api

HOSTILE = '<img src=x onerror="window.pwned=1">'

SAMPLES = """\
__pipeline__:
  name: samples
  version: "1.2"
"""
SAMPLES_MAIN = """\
- name: prepare
  cmd: echo "{{ project }}" > project.txt
{% for f in dataFiles %}
- name: align-{{ f.rgsm }}
  after: prepare
  cmd: echo "{{ f.fastqPath }}" > {{ f.rgsm }}.txt; sleep 0.3
{% endfor %}
- name: report
  after-re: ^align-.*$
  cmd: cat *.txt
"""
SAMPLES_SCHEMA = {
    "type": "object",
    "required": ["pipeline", "project", "email", "dataFiles"],
    "properties": {
        "pipeline": {"type": "string"},
        "project": {"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9_-]+$"},
        "email": {"type": "string", "pattern": "^[^@ ]+@[^@ ]+$", "description": "who is told"},
        "threads": {"type": "integer", "minimum": 1, "maximum": 8},
        "genome": {"enum": ["grch38", "grcm39"]},
        "dataFiles": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["rgsm", "fastqPath"],
                "properties": {
                    "rgsm": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"},
                    "fastqPath": {"type": "string"},
                },
            },
        },
    },
}
MARKED = f"""\
__pipeline__:
  name: marked
  version: "0.1"
note: '{HOSTILE}'
"""
MARKED_SCHEMA = {
    "type": "object",
    "required": ["pipeline", "project"],
    "properties": {
        "pipeline": {"type": "string"},
        "project": {"type": "string", "description": HOSTILE},
        "colour": {"enum": [HOSTILE, "blue"]},
    },
}


@contextmanager
def pages_node(root: Path, env: dict[str, str] | None = None) -> Iterator[Node]:
    search = root / "pipelines"
    write_pipeline(search, "hello", HELLO, HELLO_MAIN)
    write_pipeline(search, "slow", SLOW, SLOW_MAIN)
    write_pipeline(search, "samples", SAMPLES, SAMPLES_MAIN, SAMPLES_SCHEMA)
    write_pipeline(search, "marked", MARKED, "- name: one\n  cmd: 'true'\n", MARKED_SCHEMA)
    data_dir = root / "state"
    ctx = Context.open(Settings(data_dir=data_dir, log=LogSettings(access=False)))
    ctx.migrate()
    tokens = {}
    for user, scopes in {
        "ann": {Scope.READ, Scope.RUN},
        "bob": {Scope.READ, Scope.RUN},
    }.items():
        ctx.identities.create_user(user, scopes=set(scopes))
        tokens[user] = ctx.identities.create_token(user, set(scopes)).secret
    ctx.close()
    projects = root / "projects"
    with strato_api(
        data_dir,
        STRATO_PIPELINES_SEARCH_PATHS=str(search),
        STRATO_PIPELINES_PROJECT_ROOT=str(projects),
        STRATO_PIPELINES_KILL_GRACE="0.5",
        **(env or {}),
    ) as api:
        yield Node(api, tokens, projects)


def headers(node: Node, who: str = "ann") -> dict[str, str]:
    """The token as a bearer header: what a browser context carries on every request."""
    return {"Authorization": f"Bearer {node.tokens[who]}"}


def schema_json(schema: object) -> str:
    return json.dumps(schema)
