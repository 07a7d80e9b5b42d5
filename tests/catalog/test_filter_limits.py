"""Hostile CQL2 filters against `strato api` in a process of its own.

Deeply nested CQL2 text used to kill the server process (SIGSEGV in the cql2 package's
native parser), and filters of thousands of arguments or a 100 KB LIKE pattern answered
500 after tens of seconds. Each is sent over every route that takes a filter; each must
answer a 400 problem naming the limit, and the process must still be there afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from strato.catalog.demo.generator import generate_items
from strato.catalog.model.cql2_limits import FilterLimits, check_json, check_text
from strato.catalog.search.search import parse_cql2_text
from strato.errors import InvalidInput
from strato.settings import Settings
from tests.catalog.holding import catalog_holding
from tests.helpers import assert_problem
from tests.served import Api, strato_api


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """`strato api` on a catalog of a few items, as deployed: a process of its own, so a
    crash is seen as one instead of taking the test run with it."""
    data_dir = tmp_path_factory.mktemp("limits") / "data"
    catalog_holding(Settings(data_dir=data_dir), generate_items(5, seed=3)).close()
    with strato_api(data_dir) as running:
        yield running


def nested_parentheses(n: int) -> str:
    return "(" * n + "\"cmip6:variable_id\" = 'tas'" + ")" * n


def nested_not(n: int) -> str:
    return "NOT (" * n + "\"cmip6:variable_id\" = 'tas'" + ")" * n


def nested_json(n: int) -> str:
    """CQL2 JSON nested ``n`` levels of ``not``, as text (json.dumps would recurse)."""
    leaf = '{"op":"=","args":[{"property":"cmip6:variable_id"},"tas"]}'
    return '{"op":"not","args":[' * n + leaf + "]}" * n


def get_routes(api: Api) -> list[tuple[str, dict[str, str]]]:
    """Every GET route that takes a filter, with the parameters it needs (an aggregation
    compiles the filter only when it is asked for one)."""
    stac = f"{api.url}/stac"
    count = {"aggregations": "total_count"}
    return [
        (f"{stac}/search", {}),
        (f"{stac}/collections/CMIP6/items", {}),
        (f"{stac}/aggregate", count),
        (f"{stac}/collections/CMIP6/aggregate", count),
    ]


def post_routes(api: Api) -> list[str]:
    return [f"{api.url}/stac/search", f"{api.url}/stac/aggregate"]


def post_body(filter_text: str, lang: str) -> str:
    return f'{{"aggregations": ["total_count"], "filter-lang": "{lang}", "filter": {filter_text}}}'


def send(method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        return httpx.request(method, url, timeout=120, **kwargs)
    except httpx.TransportError as exc:
        raise AssertionError(f"{method} {url}: no answer ({exc})") from None


@pytest.mark.parametrize(
    "text", [nested_parentheses(2_000), nested_not(1_200)], ids=["parentheses", "not"]
)
def test_deeply_nested_cql2_text_is_refused_and_the_server_lives(api: Api, text: str) -> None:
    for url, params in get_routes(api):
        r = send("GET", url, params={**params, "filter": text})
        assert api.alive(), f"GET {url} killed the server: {api.died()}"
        assert_problem(r, 400, "nested deeper than 64 levels")
    for url in post_routes(api):
        body = post_body(json.dumps(text), "cql2-text")
        r = send("POST", url, content=body, headers={"content-type": "application/json"})
        assert api.alive(), f"POST {url} killed the server: {api.died()}"
        assert_problem(r, 400, "nested deeper than 64 levels")


def test_deeply_nested_cql2_json_is_refused(api: Api) -> None:
    # Deep enough to pass JSON decoding, deeper than the limit.
    filter_text = nested_json(300)
    for url, params in get_routes(api):
        r = send("GET", url, params={**params, "filter": filter_text, "filter-lang": "cql2-json"})
        assert api.alive(), api.died()
        assert_problem(r, 400, "nested deeper than 64 levels")
    for url in post_routes(api):
        body = post_body(filter_text, "cql2-json")
        r = send("POST", url, content=body, headers={"content-type": "application/json"})
        assert api.alive(), api.died()
        assert_problem(r, 400, "nested deeper than 64 levels")


def test_a_json_body_nested_beyond_any_parser_is_a_400(api: Api) -> None:
    body = '{"filter": ' + "[" * 100_000 + "]" * 100_000 + "}"
    for url in post_routes(api):
        r = send("POST", url, content=body, headers={"content-type": "application/json"})
        assert api.alive(), api.died()
        assert_problem(r, 400, "the JSON body nests deeper than the server reads")


def test_ten_thousand_chained_ands_are_refused(api: Api) -> None:
    text = " AND ".join(f"\"cmip6:variable_id\" <> 'v{i}'" for i in range(10_000))
    r = send("POST", f"{api.url}/stac/search", json={"filter": text, "filter-lang": "cql2-text"})
    assert api.alive(), api.died()
    assert_problem(r, 400, "characters; at most 65,536 are accepted")
    # Shorter, within the length: the count of operators is the limit.
    text = " AND ".join(f"id<>'{i}'" for i in range(3_000))
    r = send("POST", f"{api.url}/stac/search", json={"filter": text, "filter-lang": "cql2-text"})
    assert_problem(r, 400, "more than 1,000 operators and values")


@pytest.mark.parametrize("op", ["and", "or"])
def test_a_json_operator_of_ten_thousand_arguments_is_refused(api: Api, op: str) -> None:
    args = [
        {"op": "=", "args": [{"property": "cmip6:variable_id"}, f"v{i}"]} for i in range(10_000)
    ]
    r = send("POST", f"{api.url}/stac/search", json={"filter": {"op": op, "args": args}})
    assert api.alive(), api.died()
    assert_problem(r, 400, "has 10,000 arguments; at most 500 are accepted")


def test_a_100_kb_like_pattern_is_refused(api: Api) -> None:
    pattern = "%a" * 50_000
    like = {"op": "like", "args": [{"property": "cmip6:variable_id"}, pattern]}
    r = send("POST", f"{api.url}/stac/search", json={"filter": like})
    assert_problem(r, 400, "a string of 100,000 characters; at most 1,024 are accepted")
    r = send("GET", f"{api.url}/stac/search", params={"filter": f"id LIKE '{pattern[:30_000]}'"})
    assert_problem(r, 400, "a string of 30,000 characters; at most 1,024 are accepted")
    assert api.alive(), api.died()


def test_a_filter_text_longer_than_the_limit_is_refused(api: Api) -> None:
    text = " OR ".join(f"id = 'item-{i:06d}'" for i in range(4_000))
    r = send("POST", f"{api.url}/stac/search", json={"filter": text, "filter-lang": "cql2-text"})
    assert_problem(r, 400, "at most 65,536 are accepted")


def test_filters_within_the_limits_still_answer(api: Api) -> None:
    ids = [f"id-{i}" for i in range(400)]
    r = send(
        "POST",
        f"{api.url}/stac/search",
        json={"filter": {"op": "in", "args": [{"property": "id"}, ids]}},
    )
    assert r.status_code == 200, r.text
    text = nested_parentheses(30)
    r = send("GET", f"{api.url}/stac/search", params={"filter": text})
    assert r.status_code == 200, r.text
    assert r.json()["numberMatched"] >= 0


# --- the limits themselves, without a server -------------------------------------------


GOOD_TEXT = [
    "\"cmip6:variable_id\" = 'tas' AND NOT (\"cmip6:source_id\" IN ('A', 'B'))",
    "S_INTERSECTS(geometry, POLYGON((-180 -90, 180 -90, 180 90, -180 90, -180 -90)))",
    "datetime BETWEEN TIMESTAMP('2000-01-01T00:00:00Z') AND TIMESTAMP('2001-01-01T00:00:00Z')",
    "id LIKE 'CMIP6.%' AND version >= '20200101' OR latest = true",
    "T_INTERSECTS(datetime, INTERVAL('2000-01-01', '2001-12-31'))",
]


@pytest.mark.parametrize("text", GOOD_TEXT)
def test_everyday_filters_are_within_the_limits(text: str) -> None:
    parsed = parse_cql2_text(text)
    check_json(parsed, FilterLimits())


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("- " * 80 + "1 = id", "nested deeper than 64"),
        ("NOT " * 80 + "id = 'a'", "nested deeper than 64"),
        ("f(" * 70 + "id" + ")" * 70 + " = 1", "nested deeper than 64"),
        ("1" + " + 1" * 100 + " = id", "nested deeper than 64"),
        ("id" + " = id" * 100, "nested deeper than 64"),
        ("A_CONTAINS(id, " + "(" * 70 + "1" + ")" * 70 + ")", "nested deeper than 64"),
        ("id = 'a'" + " AND id = 'a'" * 2_500, "more than 1,000 operators"),
    ],
)
def test_text_that_nests_or_chains_is_refused_before_parsing(text: str, limit: str) -> None:
    with pytest.raises(InvalidInput, match=limit):
        check_text(text, FilterLimits())


def test_quotes_hide_nothing_from_the_scan() -> None:
    # What is inside a string literal is not nesting; what follows its end is.
    check_text("id = '" + "(" * 500 + "'", FilterLimits())
    with pytest.raises(InvalidInput, match="nested deeper"):
        check_text("id = '' " + "(" * 100 + "'" + ")" * 100, FilterLimits())


def test_json_limits_walk_without_recursion() -> None:
    deep: Any = "x"
    for _ in range(50_000):
        deep = [deep]
    with pytest.raises(InvalidInput, match="nested deeper than 64"):
        check_json(deep, FilterLimits())
    with pytest.raises(InvalidInput, match="more than 1,000"):
        check_json({"op": "and", "args": [[1] * 400, [2] * 400, [3] * 400]}, FilterLimits())
    check_json(json.loads(nested_json(30)), FilterLimits())
