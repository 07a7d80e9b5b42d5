"""Schemathesis, a real OpenAPI client, sends property-based requests built from
strato's own OpenAPI document to a running server: whatever they are, no 5xx."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from strato.app import create_app
from strato.auth import ALL_SCOPES
from strato.context import Context
from strato.data.service import DataService
from strato.settings import DataSettings, LogSettings, Settings

MAX_EXAMPLES = 10
PASSWORD = "fuzzing-password"


@pytest.mark.timeout(900)
def test_no_server_errors(tmp_path: Path, serve: Callable[[Any], str]) -> None:
    settings = Settings(
        data_dir=tmp_path / "state",
        log=LogSettings(access=False),
        data=DataSettings(demo_scale="small"),
    )
    ctx = Context.open(settings)
    ctx.migrate()
    # A password, not a token: the fuzzer may well revoke every token it can list.
    ctx.identities.create_user("admin", password=PASSWORD, scopes=ALL_SCOPES)
    service = DataService(ctx.sessions, settings)
    [dataset_id, *_] = service.ensure_demo()
    service.close()
    url = serve(create_app(settings, context=ctx))
    # Real dataset ids let the generated requests reach the data routes' own checks.
    (tmp_path / "schemathesis.toml").write_text(
        f'[parameters]\n"path.dataset_id" = "{dataset_id}"\n'
    )
    st = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    run = subprocess.run(
        [
            st,
            "run",
            f"{url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            "1",
            "--auth",
            f"admin:{PASSWORD}",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    ctx.close()
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert counts, run.stdout[-4000:]
    assert counts.group(1) == counts.group(2), run.stdout[-4000:]
    assert int(counts.group(1)) >= 300, run.stdout[-2000:]
    assert "Authentication failed" not in run.stdout, run.stdout[-4000:]
