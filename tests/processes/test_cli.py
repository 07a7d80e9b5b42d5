"""`strato process ...` against a running node, as a user runs it."""

from __future__ import annotations

import json
import os

from tests.processes.conftest import Node
from tests.served import run_strato


def strato(node: Node, *args: str, who: str = "ann") -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}
    env |= {"STRATO_URL": node.api.url, "STRATO_TOKEN": node.tokens[who]}
    done = run_strato("process", *args, env=env)
    return done.returncode, done.stdout, done.stderr


def test_list_describe_execute_jobs_result_dismiss(node: Node) -> None:
    code, out, _ = strato(node, "list")
    assert code == 0
    assert "hello-world\tHello World" in out.splitlines()
    code, out, _ = strato(node, "describe", "hello-world")
    assert json.loads(out)["inputs"]["name"]["minOccurs"] == 1
    code, out, err = strato(node, "execute", "hello-world", "-i", "name=CLI", "-i", "message=Hi.")
    assert code == 0, err
    assert json.loads(out) == {"echo": "Hello CLI! Hi."}
    code, out, _ = strato(node, "execute", "hello-world", "-i", "name=Later", "--no-wait")
    job_id = out.strip()
    code, out, _ = strato(node, "jobs", "--process", "hello-world")
    assert job_id in out
    code, out, _ = strato(node, "result", job_id)
    if code == 0:  # else not ready yet: both are right answers
        assert json.loads(out) == {"echo": "Hello Later!"}
    code, out, _ = strato(node, "dismiss", job_id)
    assert (code, out.strip()) == (0, f"{job_id} dismissed")
    code, _, err = strato(node, "result", job_id)
    assert code == 1
    assert "404" in err


def test_bad_input_and_no_scope_are_one_line_errors(node: Node) -> None:
    code, _, err = strato(node, "execute", "hello-world", "-i", "name=3")
    assert code == 1
    assert "400" in err
    assert "$.inputs.name" in err
    code, _, err = strato(node, "execute", "hello-world", "-i", "name=x", who="rita")
    assert code == 1
    assert "403" in err
