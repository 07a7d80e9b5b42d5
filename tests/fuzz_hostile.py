"""Schemathesis hooks (``SCHEMATHESIS_HOOKS=tests.fuzz_hostile``): besides the requests it
builds from the OpenAPI document, the fuzzer sends hostile ones.

- Every operation with a ``filter`` query parameter also gets deeply nested CQL2 text
  (parentheses, ``NOT (``, function calls, unary minus, arithmetic chains) and CQL2 JSON
  text, far beyond the filter limits: the native CQL2 parser once died on such text.
- Every operation with a JSON object body also gets a body whose ``filter`` nests so, and
  a body larger than the server's ``max_body_bytes`` (sent with a Content-Length).

They are drawn beside the generated cases (``one_of``), so the fuzzer's own cases still
run; what is checked is the same: no 5xx, and no connection the server drops.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from hypothesis import strategies as st

# The server under test is started with this limit (STRATO_MAX_BODY_BYTES).
MAX_BODY_BYTES = 256 * 1024

_LEAF = "\"cmip6:variable_id\" = 'tas'"


def nested_text(kind: str, depth: int) -> str:
    """CQL2 text nested ``depth`` levels in one way the native parser recursed on."""
    if kind == "parentheses":
        return "(" * depth + _LEAF + ")" * depth
    if kind == "not":
        return "NOT (" * depth + _LEAF + ")" * depth
    if kind == "function":
        return "f(" * depth + "id" + ")" * depth + " = 1"
    if kind == "minus":
        return "- " * depth + "1 = id"
    if kind == "arithmetic":
        return "1" + " + 1" * depth + " = id"
    return "id" + " AND id = 'a'" * depth


def nested_json(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"op": "=", "args": [{"property": "cmip6:variable_id"}, "tas"]}
    for _ in range(depth):
        node = {"op": "not", "args": [node]}
    return node


_KINDS = ["parentheses", "not", "function", "minus", "arithmetic", "chain"]
# Deep enough that each once killed the server (the parser's stack, 8 MiB, overflowed
# at about 2,000 parentheses, 1,200 "NOT (" or 20,000 chained operators), in a body.
deep_text = st.builds(nested_text, st.sampled_from(_KINDS), st.sampled_from([2_500, 6_000, 25_000]))
# In a query string the request line stays within what the HTTP server reads (16 KB):
# parentheses, 6 bytes a level once URL-encoded.
deep_query_text = st.builds(nested_text, st.just("parentheses"), st.just(2_200))
# JSON nested within what the client's encoder and the server's decoder take (about 1,000
# containers), beyond the filter limit of 64 levels.
deep_json = st.integers(40, 220).map(nested_json)
large_body = st.integers(MAX_BODY_BYTES + 1, 4 * MAX_BODY_BYTES).map(lambda n: {"pad": "x" * n})


def _hostile_query(query: dict[str, Any] | None) -> st.SearchStrategy[dict[str, Any]]:
    base = dict(query or {})
    as_text = deep_query_text.map(lambda text: {**base, "filter": text, "filter-lang": "cql2-text"})
    as_json = deep_json.map(
        lambda node: {**base, "filter": json.dumps(node), "filter-lang": "cql2-json"}
    )
    return st.one_of(as_text, as_json)


def _hostile_body(body: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    as_text = deep_text.map(lambda text: {**body, "filter": text, "filter-lang": "cql2-text"})
    as_json = deep_json.map(lambda node: {**body, "filter": node, "filter-lang": "cql2-json"})
    return st.one_of(as_text, as_json, large_body)


def _takes_filter(operation: Any) -> bool:
    return any(p.name == "filter" for p in getattr(operation, "query", []))


@schemathesis.hook
def flatmap_case(context: schemathesis.HookContext, case: schemathesis.Case) -> Any:
    """The generated case, or a hostile variant of it for the operations that take one."""
    variants: list[st.SearchStrategy[Any]] = [st.just(case)]
    if _takes_filter(context.operation):
        variants.append(_hostile_query(case.query).map(lambda q: _with(case, query=q)))
    if isinstance(case.body, dict):
        variants.append(_hostile_body(case.body).map(lambda b: _with(case, body=b)))
    return st.one_of(*variants) if len(variants) > 1 else st.just(case)


def _with(case: schemathesis.Case, **changes: Any) -> schemathesis.Case:
    for name, value in changes.items():
        setattr(case, name, value)
    return case
