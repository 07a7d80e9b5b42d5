"""One `strato api` on loopback for the processes tests, with users of each kind and the
test process ``gate`` installed as a distribution of its own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from strato.auth import ALL_SCOPES, Scope
from strato.context import Context
from strato.settings import LogSettings, Settings
from tests.served import Api, strato_api

HERE = Path(__file__).parent
ENTRY_POINTS = """\
[strato.processes]
gate = strato_test_processes:endpoint
"""


@dataclass
class Node:
    api: Api
    tokens: dict[str, str]
    gates: Path

    @property
    def url(self) -> str:
        return self.api.url + "/processes-api"

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def install_plugin(site: Path) -> None:
    info = site / "strato_test_processes-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: strato-test-processes\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    (site / "strato_test_processes.py").write_text((HERE / "strato_test_processes.py").read_text())


@pytest.fixture(scope="package")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    root = tmp_path_factory.mktemp("processes")
    site = root / "site"
    install_plugin(site)
    data_dir = root / "state"
    ctx = Context.open(Settings(data_dir=data_dir, log=LogSettings(access=False)))
    ctx.migrate()
    tokens = {}
    for user, scopes in {
        "admin": ALL_SCOPES,
        "ann": {Scope.READ, Scope.PROCESS},
        "bob": {Scope.READ, Scope.PROCESS},
        "rita": {Scope.READ},
    }.items():
        ctx.identities.create_user(user, scopes=set(scopes))
        tokens[user] = ctx.identities.create_token(user, set(scopes)).secret
    ctx.close()
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    gates = root / "gates"
    gates.mkdir()
    with strato_api(data_dir, PYTHONPATH=path) as api:
        yield Node(api, tokens, gates)
