"""Schemathesis, a real OpenAPI client, sends property-based requests built from
strato's own OpenAPI document to a running server: whatever they are, no 5xx."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

MAX_EXAMPLES = 25


def test_no_server_errors(base_url: str, admin_token: str, tmp_path: Path) -> None:
    st = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    run = subprocess.run(
        [
            st,
            "run",
            f"{base_url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            "1",
            "--header",
            f"Authorization: Bearer {admin_token}",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout, run.stdout[-4000:]
    generated = re.search(r"(\d+) generated", run.stdout)
    assert generated, run.stdout[-2000:]
    assert int(generated.group(1)) >= 100, run.stdout[-2000:]
