"""Centro's API on a real `strato api`: a run submitted with curl runs to completion on the
local backend; what is refused is a 4xx naming the field and creates nothing; who sees
which run; the runs API's task list, logs, cancel, resume and retry; the command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.pipelines.conftest import PASSWORD, Node

CONFIG = {
    "pipeline": "hello@1.0",
    "project": "GIAB-1",
    "email": "ann@example.org",
    "hpcAccount": "lab",
    "isilonPath": "/isilon/lab/GIAB-1",
    "samples": ["s1", "s2"],
}
CURL = shutil.which("curl")


def curl(node: Node, *args: str) -> subprocess.CompletedProcess[str]:
    assert CURL is not None
    return subprocess.run(
        [CURL, "--silent", "--show-error", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def new_run(node: Node, config: Any, who: str = "ann") -> httpx.Response:
    return httpx.post(f"{node.url}/api/v1/new-run/", json=config, auth=node.auth(who))


def run_ids(node: Node, who: str) -> set[str]:
    runs = httpx.get(f"{node.url}/api/v1/runs", auth=node.auth(who)).json()["runs"]
    return {r["id"] for r in runs}


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_a_run_submitted_with_curl_runs_to_completion(node: Node) -> None:
    done = curl(
        node,
        "--fail",
        "-u",
        f"ann:{node.tokens['ann']}",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        json.dumps(CONFIG),
        f"{node.url}/api/v1/new-run/",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    created = json.loads(done.stdout)
    run_id = created["id"]
    assert created["pipeline"] == "hello@1.0"
    assert created["urls"]["run"] == f"{node.url}/api/v1/runs/{run_id}"
    run = node.wait(run_id)
    assert run["state"] == "succeeded", run["reason"]
    assert run["config"]["samples"] == ["s1", "s2"]
    assert run["project"] == "GIAB-1"
    project = Path(run["project_dir"])
    assert (project / "greeting.txt").read_text() == "hello GIAB-1\n"
    assert sorted((project / "samples.txt").read_text().split()) == ["s1", "s2"]
    tasks = httpx.get(created["urls"]["tasks"], auth=node.auth("ann")).json()["tasks"]
    assert [t["name"] for t in tasks] == ["greet", "count-s1", "count-s2", "done"]
    assert {t["state"] for t in tasks} == {"complete"}
    assert tasks[3]["parents"] == ["count-s1", "count-s2", "greet"]
    log = httpx.get(tasks[3]["log"], auth=node.auth("ann"))
    assert log.text == "hello GIAB-1\nfinished\n"
    # The user's password works as well as a token.
    again = curl(node, "--fail", "-u", f"ann:{PASSWORD}", f"{node.url}/api/v1/runs/{run_id}")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["state"] == "succeeded"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email": None}, "email"),
        ({"hpcAccount": None}, "hpcAccount"),
        ({"pipeline": None}, "pipeline"),
        ({"pipeline": "nosuch@1.0"}, "pipeline"),
        ({"pipeline": "hello@9.9"}, "pipeline"),
        ({"project": 7}, "project"),
        ({"samples": ["a\n- name: evil\n  cmd: touch /tmp/x"]}, "samples[0]"),
    ],
)
def test_what_is_refused_names_the_field_and_creates_nothing(
    node: Node, change: dict[str, Any], field: str
) -> None:
    before = run_ids(node, "admin")
    config = {k: v for k, v in {**CONFIG, **change}.items() if v is not None}
    answer = new_run(node, config)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["detail"].startswith(field), problem
    assert run_ids(node, "admin") == before


def test_curl_fail_sees_a_refusal(node: Node) -> None:
    if CURL is None:
        pytest.skip("curl is not installed")
    config = {k: v for k, v in CONFIG.items() if k != "isilonPath"}
    done = curl(
        node,
        "--fail-with-body",
        "-u",
        f"ann:{node.tokens['ann']}",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        json.dumps(config),
        f"{node.url}/api/v1/new-run/",
    )
    assert done.returncode == 22  # curl's code for an HTTP error with --fail
    assert "isilonPath" in json.loads(done.stdout)["detail"]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"", 400, "empty"),
        (b"{not json", 400, "not JSON"),
        (b"[1, 2]", 400, "no JSON object"),
        (b"[" * 5000 + b"]" * 5000, 400, "nests deeper"),
        (b'{"a": "' + b"x" * (2 << 20) + b'"}', 413, "larger than"),
    ],
)
def test_malformed_bodies_are_refused_before_anything_is_made(
    node: Node, body: bytes, status: int, says: str
) -> None:
    before = run_ids(node, "admin")
    answer = httpx.post(
        f"{node.url}/api/v1/new-run/",
        content=body,
        headers={"Content-Type": "application/json"},
        auth=node.auth("ann"),
    )
    assert answer.status_code == status, answer.text
    assert says in answer.json()["detail"]
    assert run_ids(node, "admin") == before


def test_a_pipelines_own_schema_is_checked(node: Node) -> None:
    answer = new_run(node, {"pipeline": "typed@0.1", "project": "p", "samples": []})
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith("samples:")
    # Centro's fields are not asked of a pipeline with a schema of its own.
    ok = new_run(node, {"pipeline": "typed@0.1", "samples": ["x"]})
    assert ok.status_code == 201, ok.text
    assert node.wait(ok.json()["id"])["state"] == "succeeded"


def test_a_wrong_password_is_401_with_a_challenge(node: Node) -> None:
    answer = httpx.post(f"{node.url}/api/v1/new-run/", json=CONFIG, auth=("ann", "wrong-password"))
    assert answer.status_code == 401
    assert "Basic" in answer.headers["www-authenticate"]
    no_scope = new_run(node, CONFIG, who="rita")
    assert no_scope.status_code == 403
    assert "run" in no_scope.json()["detail"]


def test_a_user_sees_only_their_own_runs(node: Node) -> None:
    answer = new_run(node, {**CONFIG, "samples": []})
    assert answer.status_code == 201, answer.text
    run_id = answer.json()["id"]
    node.wait(run_id)
    assert run_id in run_ids(node, "ann")
    assert run_id not in run_ids(node, "bob")
    assert run_id in run_ids(node, "admin")
    for path in ("", "/tasks", "/tasks/greet/log"):
        seen = httpx.get(f"{node.url}/api/v1/runs/{run_id}{path}", auth=node.auth("bob"))
        assert seen.status_code == 404, path
    for action in ("cancel", "resume", "retry"):
        done = httpx.post(f"{node.url}/api/v1/runs/{run_id}/{action}", auth=node.auth("bob"))
        assert done.status_code == 404, action
    admin = httpx.get(f"{node.url}/api/v1/runs/{run_id}", auth=node.auth("admin"))
    assert admin.json()["submitter"] == "ann"


def test_cancel_then_resume_keeps_what_completed(node: Node) -> None:
    answer = new_run(node, {**CONFIG, "pipeline": "slow@2.0"})
    assert answer.status_code == 201, answer.text
    urls = answer.json()["urls"]

    def tasks() -> dict[str, Any]:
        listed = httpx.get(urls["tasks"], auth=node.auth("ann")).json()["tasks"]
        return {t["name"]: t for t in listed}

    run_id = answer.json()["id"]
    node.wait(run_id, until=("running",))
    while tasks()["wait"]["state"] != "running":
        pass
    cancelled = httpx.post(urls["cancel"], auth=node.auth("ann"))
    assert cancelled.status_code == 200
    assert node.wait(run_id)["state"] == "cancelled"
    assert tasks()["wait"]["state"] == "cancelled"
    # An ended run cannot be cancelled again: a conflict, said as one.
    assert httpx.post(urls["cancel"], auth=node.auth("ann")).status_code == 409
    resumed = httpx.post(urls["resume"], auth=node.auth("ann"))
    assert resumed.status_code == 200, resumed.text
    node.wait(run_id, until=("running",))
    while tasks()["wait"]["state"] != "running":
        pass
    assert tasks()["first"]["attempts"] == 1  # kept, not run again
    assert httpx.post(urls["resume"], auth=node.auth("ann")).status_code == 409
    httpx.post(urls["cancel"], auth=node.auth("ann"))
    assert node.wait(run_id)["state"] == "cancelled"


def test_the_command_line_submits_follows_and_reads_logs(node: Node, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({k: v for k, v in CONFIG.items() if k != "pipeline"}))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STRATO_")},
        "STRATO_URL": node.url,
        "STRATO_USER": "ann",
        "STRATO_TOKEN": node.tokens["ann"],
    }

    def strato(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "strato", "pipelines", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    done = strato(
        "submit", "hello@1.0", "-C", str(config), "-c", "json:samples", '["z"]', "--follow"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = done.stdout.split()[0]
    assert done.stdout.strip().endswith(f"{run_id} succeeded")
    logs = strato("logs", run_id, "done")
    assert logs.stdout == "hello GIAB-1\nfinished\n", logs.stderr
    status = strato("status", run_id, "--tasks")
    assert json.loads(status.stdout)["tasks"] == {
        "greet": "complete",
        "count-z": "complete",
        "done": "complete",
    }
    listed = strato("runs", "--state", "succeeded")
    assert run_id in listed.stdout
    refused = strato("submit", "nosuch@1.0", "-C", str(config))
    assert refused.returncode == 1
    assert "pipeline" in refused.stderr
