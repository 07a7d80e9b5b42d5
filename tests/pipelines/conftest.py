"""One `strato api` on loopback for the pipelines API tests: pipelines written into a
temporary search path, users with tokens (ann also with a password), the local backend."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from strato.auth import ALL_SCOPES, Scope
from strato.context import Context
from strato.settings import LogSettings, Settings
from tests.served import Api, strato_api

PASSWORD = "ann-password-1"
PATIENCE = 60.0

HELLO = """\
__pipeline__:
  name: hello
  version: "1.0"
greeting: hello
"""
HELLO_MAIN = """\
- name: greet
  cmd: echo "{{ greeting }} {{ project }}" > greeting.txt
{% for sample in samples | default([]) %}
- name: count-{{ sample }}
  after: greet
  cmd: echo {{ sample }} >> samples.txt
{% endfor %}
- name: done
  after-re: ^(greet|count-.*)$
  cmd: cat greeting.txt; echo finished
"""
SLOW = """\
__pipeline__:
  name: slow
  version: "2.0"
"""
SLOW_MAIN = """\
- name: first
  cmd: "true"
- name: wait
  after: first
  cmd: sleep 60
"""
TYPED = """\
__pipeline__:
  name: typed
  version: "0.1"
"""
TYPED_SCHEMA = {
    "type": "object",
    "required": ["samples"],
    "properties": {"samples": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
}


@dataclass
class Node:
    api: Api
    tokens: dict[str, str]
    projects: Path

    @property
    def url(self) -> str:
        return self.api.url

    def auth(self, who: str) -> tuple[str, str]:
        """HTTP Basic: the user with a token as its password."""
        return (who, self.tokens[who])

    def wait(self, run_id: str, who: str = "ann", *, until: tuple[str, ...] = ()) -> Any:
        """The run once it has ended (or reached a state of ``until``)."""
        ended = until or ("succeeded", "failed", "cancelled")
        deadline = time.monotonic() + PATIENCE
        while True:
            run = httpx.get(f"{self.url}/api/v1/runs/{run_id}", auth=self.auth(who)).json()
            if run["state"] in ended:
                return run
            assert time.monotonic() < deadline, run
            time.sleep(0.1)


def write_pipeline(root: Path, name: str, manifest: str, main: str, schema: Any = None) -> None:
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "pipeline.yaml").write_text(manifest)
    (directory / "main.jst").write_text(main)
    if schema is not None:
        (directory / "config.schema.json").write_text(json.dumps(schema))


def backend_env(backend: str) -> dict[str, str]:
    """The settings of a node whose tasks run on ``backend``: ``local``, ``jobs``, or ``slurm`` (the
    single-node cluster of scripts/slurm.sh; the test is skipped, or fails in CI, where
    it does not answer)."""
    if backend == "local":
        return {}
    if backend == "jobs":  # each attempt a job of the node's job engine (its local pool)
        return {"STRATO_PIPELINES_BACKEND": "jobs"}
    from tests.conftest import need
    from tests.pipelines.test_slurm_backend import slurm_answers

    need("Slurm", slurm_answers(), "run scripts/slurm.sh start (scripts/ensure-services.sh does)")
    return {"STRATO_PIPELINES_BACKEND": "slurm", "STRATO_PIPELINES_SLURM_POLL": "0.2"}


@pytest.fixture(scope="package", params=["local", "slurm", "jobs"])
def node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Node]:
    """The node, its tasks run on the local backend, on Slurm, then as jobs."""
    env = backend_env(request.param)
    root = tmp_path_factory.mktemp(f"pipelines-api-{request.param}")
    search = root / "pipelines"
    write_pipeline(search, "hello", HELLO, HELLO_MAIN)
    write_pipeline(search, "slow", SLOW, SLOW_MAIN)
    typed_main = "- name: one\n  cmd: echo {{ samples[0] }}\n"
    write_pipeline(search, "typed", TYPED, typed_main, TYPED_SCHEMA)
    data_dir = root / "state"
    ctx = Context.open(Settings(data_dir=data_dir, log=LogSettings(access=False)))
    ctx.migrate()
    tokens = {}
    for user, scopes in {
        "admin": ALL_SCOPES,
        "ann": {Scope.READ, Scope.RUN},
        "bob": {Scope.READ, Scope.RUN},
        "rita": {Scope.READ},
    }.items():
        password = PASSWORD if user == "ann" else None
        ctx.identities.create_user(user, password=password, scopes=set(scopes))
        tokens[user] = ctx.identities.create_token(user, set(scopes)).secret
    ctx.close()
    projects = root / "projects"
    with strato_api(
        data_dir,
        STRATO_PIPELINES_SEARCH_PATHS=str(search),
        STRATO_PIPELINES_PROJECT_ROOT=str(projects),
        STRATO_PIPELINES_KILL_GRACE="0.5",
        STRATO_PIPELINES_RETRY_FIRST="0.05",
        **env,
    ) as api:
        yield Node(api, tokens, projects)
