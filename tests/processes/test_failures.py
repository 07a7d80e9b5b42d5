"""What a failed job answers: a task that refused its inputs keeps its 4xx across the
worker boundary (a synchronous execution, a failed job's results, a workflow whose step
refused them), and only a process that crashed is 500 ``process-failed``."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from strato.errors import (
    BadGateway,
    GatewayTimeout,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    Unavailable,
)
from strato.processes.model.errors import (
    NoSuchProcess,
    ProcessFailed,
    RemoteUnreachable,
    job_failure,
)
from tests.data.model_files import write_station_file
from tests.processes.conftest import Node
from tests.processes.workflow_support import DOMAIN, data_dir, model_file, wait_done

STRATO = "urn:strato:problem:"


@pytest.fixture
def http(node: Node) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=node.url, timeout=60) as client:
        yield client


def bad_reduce(node: Node) -> dict[str, Any]:
    """Valid by the description; the task finds the file has no such variable."""
    path = model_file(node)
    return {"href": str(path), "variable": "nope", "axes": ["time"], "method": "mean"}


def test_a_synchronous_task_refusing_its_input_is_400_naming_it(
    http: httpx.Client, node: Node
) -> None:
    answer = http.post(
        "/processes/reduce/execution",
        json={"inputs": bad_reduce(node)},
        headers=node.auth("ann"),
    )
    assert answer.status_code == 400, answer.text
    problem = answer.json()
    assert problem["type"] == STRATO + "invalid-input"
    assert "variable" in problem["detail"]
    assert "'nope'" in problem["detail"]


def test_the_results_of_a_job_that_refused_its_input_are_400(
    http: httpx.Client, node: Node
) -> None:
    made = http.post(
        "/processes/reduce/execution",
        json={"inputs": bad_reduce(node)},
        headers={**node.auth("ann"), "Prefer": "respond-async"},
    )
    assert made.status_code == 201, made.text
    status = wait_done(http, node, made.json()["jobID"])
    assert status["status"] == "failed"
    assert "'nope'" in status["message"]
    results = http.get(f"/jobs/{status['jobID']}/results", headers=node.auth("ann"))
    assert results.status_code == 400, results.text
    assert results.json()["type"] == STRATO + "invalid-input"
    assert "'nope'" in results.json()["detail"]


def test_a_workflow_whose_step_refused_its_input_is_400(http: httpx.Client, node: Node) -> None:
    path = model_file(node)
    body = {
        "steps": {
            "sub": {
                "process": "subset",
                "inputs": {"href": str(path), "variable": "tas", "domain": DOMAIN},
            },
            "mean": {
                "process": "reduce",
                "inputs": {"href": {"step": "sub", "output": "result"}, "variable": "nope"},
            },
        },
        "outputs": {"mean": "mean"},
    }
    answer = http.post(
        "/processes/workflow/execution", json={"inputs": body}, headers=node.auth("ann")
    )
    assert answer.status_code == 400, answer.text
    assert "step 'mean'" in answer.json()["detail"]
    assert "'nope'" in answer.json()["detail"]


def test_a_workflow_whose_step_is_refused_when_submitted_is_400(
    http: httpx.Client, node: Node
) -> None:
    """hello-world's name is a string: the step is refused as it is submitted (its inputs
    are checked then, once the steps before it have given theirs)."""
    body = {
        "steps": {"s": {"process": "hello-world", "inputs": {"name": {"a": 1}}}},
        "outputs": {"o": {"step": "s", "output": "echo"}},
    }
    answer = http.post(
        "/processes/workflow/execution", json={"inputs": body}, headers=node.auth("ann")
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["type"] == STRATO + "invalid-input"
    assert "step 's' (hello-world) was refused" in answer.json()["detail"]
    assert "'name'" in answer.json()["detail"]


@pytest.mark.parametrize("depth", [65, 600, 900])
def test_workflow_inputs_nested_too_deep_are_400(
    http: httpx.Client, node: Node, depth: int
) -> None:
    """Under the JSON parser's limit, a nesting of hundreds exhausted the stack of the
    plan's recursive walks (a 500)."""
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value}
    body = {
        "steps": {"s": {"process": "hello-world", "inputs": {"name": value}}},
        "outputs": {"o": {"step": "s", "output": "echo"}},
    }
    answer = http.post(
        "/processes/workflow/execution", json={"inputs": body}, headers=node.auth("ann")
    )
    assert answer.status_code == 400, answer.text
    assert "nests deeper than 64 levels" in answer.json()["detail"]
    assert "$.inputs.steps.s.inputs.name" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("process", "extra"),
    [
        ("reduce", {"method": "mean"}),
        ("climatology", {"method": "mean"}),
        ("resample", {"freq": "1MS"}),
    ],
)
def test_a_computation_over_text_is_400_naming_the_variable(
    http: httpx.Client, node: Node, process: str, extra: dict[str, Any]
) -> None:
    """Station operators are text: numpy cannot average them, and that is the choice of
    variable, not a crash."""
    path = data_dir(node) / "stations.nc"
    if not path.exists():
        write_station_file(path)
    inputs = {"href": str(path), "variable": "operator", **extra}
    answer = http.post(
        f"/processes/{process}/execution", json={"inputs": inputs}, headers=node.auth("ann")
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["type"] == STRATO + "invalid-input"
    assert "variable: operator holds text" in answer.json()["detail"]
    assert "Traceback" not in answer.text


def test_a_crashed_process_is_500_process_failed(http: httpx.Client, node: Node) -> None:
    gate = node.gates / secrets.token_hex(8)
    gate.touch()  # open: the synchronous run ends at once, by failing
    inputs = {"path": str(gate), "name": "crash", "fail": True}
    answer = http.post(
        "/processes/gate/execution", json={"inputs": inputs}, headers=node.auth("ann")
    )
    assert answer.status_code == 500, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"] == STRATO + "process-failed"
    # The reason, in one line: the exception's class and message, not its traceback.
    assert "RuntimeError: asked to fail" in answer.json()["detail"]
    assert "Traceback" not in answer.text
    assert 'File "' not in answer.text
    made = http.post(
        "/processes/gate/execution",
        json={"inputs": inputs},
        headers={**node.auth("ann"), "Prefer": "respond-async"},
    )
    status = wait_done(http, node, made.json()["jobID"])
    results = http.get(f"/jobs/{status['jobID']}/results", headers=node.auth("ann"))
    assert results.status_code == 500
    assert results.json()["type"] == STRATO + "process-failed"


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("InvalidInput: input 'variable' at $.inputs.variable: no 'x'", InvalidInput),
        ("PayloadTooLarge: the domain of tas is 3.2 GB, over the budget of 1 GB", PayloadTooLarge),
        ("NotFound: there is no dataset 'gone'", NotFound),
        ("step 'mean' (reduce) failed: PayloadTooLarge: over the budget", PayloadTooLarge),
        ("RuntimeError: asked to fail", ProcessFailed),
        # A crash whose message merely quotes a client error's name stays a crash.
        ("RuntimeError: InvalidInput: not ours", ProcessFailed),
        ("step 'g' (gate) failed: RuntimeError: asked to fail", ProcessFailed),
        ("step 's' (hello-world) was refused: InvalidInput: input 'name'", InvalidInput),
        ("step 's' (remote:x) was refused: NoSuchProcess: provider 'remote:'", NoSuchProcess),
        ("RemoteUnreachable: provider 'remote:' cannot be reached", RemoteUnreachable),
        ("step 's' (remote:x) failed: BadGateway: provider 'remote:'", BadGateway),
        ("GatewayTimeout: provider 'head:' did not answer in 3 s", GatewayTimeout),
        ("DatasetBroken: dataset 'era' cannot be opened: truncated file", Unavailable),
        ("Unavailable: the database is not reachable", Unavailable),
        ("killed: the worker died (signal 9)", ProcessFailed),
        (None, ProcessFailed),
    ],
)
def test_a_reason_keeps_only_a_client_errors_class(reason: str | None, kind: type) -> None:
    error = job_failure("j1", reason)
    assert type(error) is kind
    assert error.detail.startswith("job 'j1' failed: ")
    assert (reason or "no reason given") in error.detail
