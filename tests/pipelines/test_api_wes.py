"""GA4GH WES 1.1 on a real `strato api`: service-info, a run submitted as a multipart form
through to COMPLETE, its tasks paged, cancel to CANCELED, and what is refused."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.pipelines.conftest import PATIENCE, Node

WES = "/ga4gh/wes/v1"


def wes(node: Node, who: str = "ann") -> httpx.Client:
    return httpx.Client(base_url=node.url + WES, auth=node.auth(who), timeout=30)


def form(**fields: Any) -> dict[str, str]:
    values = {
        "workflow_type": "JETSTREAM",
        "workflow_type_version": "1.0",
        "workflow_url": "hello@1.0",
        "workflow_params": {"project": "W1", "samples": ["a", "b", "c"]},
    } | fields
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


def submit(client: httpx.Client, **fields: Any) -> httpx.Response:
    # A multipart form, as WES asks: files= makes httpx send multipart/form-data.
    return client.post("/runs", data=form(**fields), files={"_": (None, b"")})


def wait_state(client: httpx.Client, run_id: str, states: tuple[str, ...]) -> str:
    deadline = time.monotonic() + PATIENCE
    while True:
        state: str = client.get(f"/runs/{run_id}/status").json()["state"]
        if state in states:
            return state
        assert time.monotonic() < deadline, state
        time.sleep(0.1)


def test_service_info_names_jetstream_and_counts_runs(node: Node) -> None:
    info = httpx.get(f"{node.url}{WES}/service-info").json()
    assert info["workflow_type_versions"]["JETSTREAM"]["workflow_type_version"] == ["1"]
    assert "1.1.0" in info["supported_wes_versions"]
    assert info["type"]["artifact"] == "wes"
    counts = info["system_state_counts"]
    assert set(counts) >= {"QUEUED", "RUNNING", "COMPLETE", "CANCELED", "EXECUTOR_ERROR"}
    with wes(node) as client:
        run_id = submit(client).json()["run_id"]
        wait_state(client, run_id, ("COMPLETE",))
    after = httpx.get(f"{node.url}{WES}/service-info").json()["system_state_counts"]
    assert after["COMPLETE"] == counts["COMPLETE"] + 1


def test_a_run_submitted_as_a_form_completes_and_its_tasks_are_paged(node: Node) -> None:
    with wes(node) as client:
        answer = submit(client, tags={"batch": "7"})
        assert answer.status_code == 200, answer.text
        run_id = answer.json()["run_id"]
        assert wait_state(client, run_id, ("COMPLETE", "EXECUTOR_ERROR")) == "COMPLETE"
        log = client.get(f"/runs/{run_id}").json()
        assert log["state"] == "COMPLETE"
        assert log["request"]["workflow_url"] == "hello@1.0"
        assert log["request"]["workflow_type"] == "JETSTREAM"
        assert log["request"]["tags"] == {"batch": "7"}
        assert log["request"]["workflow_params"] == {"project": "W1", "samples": ["a", "b", "c"]}
        assert log["run_log"]["end_time"] is not None
        assert log["task_logs_url"].endswith(f"{WES}/runs/{run_id}/tasks")
        names: list[str] = []
        token = ""
        pages = 0
        while True:
            page = client.get(
                f"/runs/{run_id}/tasks", params={"page_size": 2, "page_token": token}
            ).json()
            assert len(page["task_logs"]) <= 2
            names += [t["name"] for t in page["task_logs"]]
            pages += 1
            token = page["next_page_token"]
            if not token:
                break
        assert names == ["greet", "count-a", "count-b", "count-c", "done"]
        assert pages == 3
        task = client.get(f"/runs/{run_id}/tasks/done").json()
        assert task["exit_code"] == 0
        assert httpx.get(task["stdout"], auth=node.auth("ann")).text == "hello W1\nfinished\n"
        listed = client.get("/runs", params={"page_size": 1000}).json()
        mine = {r["run_id"]: r for r in listed["runs"]}
        assert mine[run_id]["state"] == "COMPLETE"
        assert mine[run_id]["tags"] == {"batch": "7"}
    with wes(node, "bob") as other:
        assert other.get(f"/runs/{run_id}").status_code == 404
        assert run_id not in {r["run_id"] for r in other.get("/runs").json()["runs"]}


def test_cancel_ends_as_canceled(node: Node) -> None:
    with wes(node) as client:
        run_id = submit(client, workflow_url="slow@2.0").json()["run_id"]
        wait_state(client, run_id, ("RUNNING",))
        answer = client.post(f"/runs/{run_id}/cancel")
        assert answer.status_code == 200
        assert answer.json() == {"run_id": run_id}
        assert wait_state(client, run_id, ("CANCELED",)) == "CANCELED"


@pytest.mark.parametrize(
    ("fields", "names"),
    [
        ({"workflow_url": "nosuch@1.0"}, "workflow_url"),
        ({"workflow_url": ""}, "workflow_url"),
        ({"workflow_type": "CWL"}, "workflow_type"),
        ({"workflow_type_version": "2.0"}, "workflow_type_version"),
        ({"workflow_params": "{not json"}, "workflow_params"),
        ({"workflow_params": [1]}, "workflow_params"),
        ({"tags": {"a": 1}}, "tags"),
        ({"workflow_engine_parameters": {"x": "y"}}, "workflow_engine_parameters"),
    ],
)
def test_a_bad_run_request_is_a_4xx_naming_the_field(
    node: Node, fields: dict[str, Any], names: str
) -> None:
    with wes(node) as client:
        before = len(client.get("/runs", params={"page_size": 1000}).json()["runs"])
        answer = submit(client, **fields)
        assert answer.status_code == 400, answer.text
        body = answer.json()
        assert body["status_code"] == 400
        assert body["msg"].startswith(names), body
        assert len(client.get("/runs", params={"page_size": 1000}).json()["runs"]) == before


def test_attachments_are_refused_unless_enabled(node: Node) -> None:
    with wes(node) as client:
        answer = client.post(
            "/runs",
            data=form(),
            files={"workflow_attachment": ("../escape.txt", b"x")},
        )
        assert answer.status_code == 400
        assert "workflow_attachment" in answer.json()["msg"]
        assert client.post("/runs", json={"workflow_url": "hello@1.0"}).status_code == 400


def test_wes_needs_credentials(node: Node) -> None:
    answer = httpx.get(f"{node.url}{WES}/runs")
    assert answer.status_code == 401
    assert "Basic" in answer.headers["www-authenticate"]
    wrong = httpx.get(f"{node.url}{WES}/runs", auth=("ann", "not-the-password"))
    assert wrong.status_code == 401
