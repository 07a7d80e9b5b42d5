"""Hostile bodies at the Stratus door (`POST /stratus/exe`) on a real node: each is a 400
problem naming what is wrong and where, before any job exists; none a 5xx, a traceback
or a 422, and the node goes on serving."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.processes.conftest import Node
from tests.processes.workflow_support import model_file

INVALID = "urn:strato:problem:invalid-input"


@pytest.fixture
def http(node: Node) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=node.api.url, timeout=120, headers=node.auth("ann")) as client:
        yield client


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


def ave(**more: Any) -> dict[str, Any]:
    return {"name": "xop:ave", "input": "v0", **more}


def request_with(node: Node, **parts: Any) -> dict[str, Any]:
    """A good request (an average of the model file's tas) with ``parts`` replaced."""
    good: dict[str, Any] = {
        "domain": [{"name": "d0", "lat": {"start": -30, "end": 30}}],
        "input": [{"uri": f"file://{model_file(node)}", "name": "tas:v0", "domain": "d0"}],
        "operation": [ave()],
    }
    return {**good, **parts}


def jobs_of(http: httpx.Client) -> int:
    listed = http.get("/processes-api/jobs", params={"limit": 1000})
    assert listed.status_code == 200, listed.text
    return len(listed.json()["jobs"])


def assert_refused(answer: httpx.Response, *said: str) -> None:
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["type"] == INVALID
    for words in said:
        assert words in problem["detail"], problem["detail"]
    assert "Traceback" not in answer.text
    assert len(problem["detail"]) < 1000  # a hostile name is not echoed whole


RAW = [
    (b"", ("body is empty",)),
    (b"{nope", ("not JSON",)),
    (b"\xff\xfe{}", ("not JSON",)),
    (b"[]", ("JSON list", "not an object")),
    (b'"x"', ("JSON str",)),
    (b"null", ("JSON NoneType",)),
    (b'{"request": []}', ("request: an object",)),
    (b"[" * 5000 + b"]" * 5000, ("nests deeper",)),
    (b'{"a":' * 3000 + b"1" + b"}" * 3000, ("nests deeper",)),
]


@pytest.mark.parametrize(("body", "said"), RAW, ids=[f"raw{i}" for i in range(len(RAW))])
def test_a_body_that_is_no_request_is_400(
    http: httpx.Client, body: bytes, said: tuple[str, ...]
) -> None:
    answer = http.post("/stratus/exe", content=body, headers={"content-type": "application/json"})
    assert_refused(answer, *said)


def cases() -> list[tuple[str, dict[str, Any], tuple[str, ...]]]:
    long = "x" * 100_000
    return [
        (
            "deep inputs",
            {"operation": [{"name": "hello-world", "inputs": {"name": nested(40)}}]},
            ("nests deeper than 32",),
        ),
        (
            "deep, under the parser's limit",
            {"operation": [{"name": "hello-world", "inputs": {"name": nested(900)}}]},
            ("nests deeper than 32",),
        ),
        (
            "a list as a domain reference",
            {"input": [{"uri": "file:///x.nc", "name": "tas:v0", "domain": ["d0"]}]},
            ("input[0].domain: a non-empty string",),
        ),
        (
            "an object as an operation's domain",
            {"operation": [ave(domain={"x": 1})]},
            ("operation[0].domain: a non-empty string",),
        ),
        (
            "a long operation name",
            {"operation": [{"name": long, "input": "v0"}]},
            ("operation[0].name: at most 200 characters",),
        ),
        (
            "a long uri",
            {"input": [{"uri": "/" + "a" * 200_000, "name": "tas:v0"}]},
            ("input[0].uri: at most 4096 characters",),
        ),
        (
            "too many domains",
            {"domain": [{"name": f"d{i}", "lat": {"start": 0}} for i in range(5000)]},
            ("domain: at most 128",),
        ),
        (
            "too many inputs",
            {"input": [{"uri": "file:///x.nc", "name": f"tas:v{i}"} for i in range(5000)]},
            ("input: at most 128",),
        ),
        (
            "too many operations",
            {"operation": [ave()] * 1000},
            ("operation: at most 64, not 1000",),
        ),
        (
            "an object as a bound",
            {"domain": [{"name": "d0", "lat": {"start": {"x": 1}}}]},
            ("domain[0].lat.start: a number",),
        ),
        (
            "true as a bound",
            {"domain": [{"name": "d0", "lat": {"start": 0, "end": True}}]},
            ("domain[0].lat.end: a number",),
        ),
        (
            "an object as a system",
            {"domain": [{"name": "d0", "lat": {"start": 0, "system": {"a": 1}}}]},
            ("domain[0].lat.system: a non-empty string",),
        ),
        (
            "an object as a domain name",
            {"domain": [{"name": {"a": 1}, "lat": {"start": 0}}]},
            ("domain[0].name: a non-empty string",),
        ),
        (
            "two domains of one name",
            {"domain": [{"name": "d0", "lat": {"start": 0}}] * 2},
            ("domain[1].name: a second domain called 'd0'",),
        ),
        (
            "a number as a variable name",
            {"input": [{"uri": "file:///x.nc", "name": 5}]},
            ("input[0].name: a non-empty string",),
        ),
        (
            "two inputs of one id",
            {"input": [{"uri": "file:///x.nc", "name": "tas:v0"}] * 2},
            ("input[1].name: a second input called 'v0'",),
        ),
        (
            "objects as axes",
            {"operation": [ave(axes=[{"a": 1}])]},
            ("operation[0].axes[0]: a non-empty string",),
        ),
        (
            "an object as an input",
            {"operation": [ave(input=[{"a": 1}])]},
            ("operation[0].input[0]: a non-empty string",),
        ),
        (
            "an object as a result",
            {"operation": [ave(result={"a": 1})]},
            ("operation[0].result: a non-empty string",),
        ),
        (
            "two results of one name",
            {"operation": [ave(result="r"), ave(result="r")]},
            ("operation[1].result: a second result called 'r'",),
        ),
        (
            "a list as a name",
            {"operation": [{"name": ["a"], "input": "v0"}]},
            ("operation[0].name: a non-empty string",),
        ),
        (
            "a number as an epa",
            {"operation": [{"epa": 5, "input": "v0"}]},
            ("operation[0].epa: a non-empty string",),
        ),
        (
            "an object as a result reference",
            {"operation": [{"name": "hello-world", "inputs": {"name": {"result": {"a": 1}}}}]},
            ("operation[0].inputs.name.result: a non-empty string",),
        ),
        (
            "an unknown axis",
            {"domain": [{"name": "d0", "q" * 5000: {"start": 0}}]},
            ("domain[0].", "an axis is lat, lon, lev or time"),
        ),
    ]


@pytest.mark.parametrize(("case", "parts", "said"), cases(), ids=[case for case, _, _ in cases()])
def test_a_hostile_request_is_400_naming_what_is_wrong(
    http: httpx.Client, node: Node, case: str, parts: dict[str, Any], said: tuple[str, ...]
) -> None:
    before = jobs_of(http)
    answer = http.post("/stratus/exe", json=request_with(node, **parts))
    assert_refused(answer, *said)
    assert jobs_of(http) == before  # refused before any job existed
    # The node goes on serving the door.
    assert http.get("/stratus/capabilities", params={"type": "epas"}).status_code == 200


def test_a_request_within_the_bounds_is_still_taken(http: httpx.Client, node: Node) -> None:
    answer = http.post("/stratus/exe", json={"request": request_with(node)})
    assert answer.status_code == 201, answer.text
