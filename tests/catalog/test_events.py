"""ESGF event envelope: constructors, parsing with JSON paths, ESGF's own models, patches."""

from __future__ import annotations

import copy
import importlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from strato.catalog.demo.generator import generate_items
from strato.catalog.model.events import (
    SINGLE_TOPIC,
    Event,
    create_event,
    error_event,
    parse_event,
    patch_event,
    replication_event,
    retraction_event,
    update_event,
    validate_event,
)
from strato.catalog.model.json_patch import apply_patch
from strato.catalog.model.topics import Route, topic_for, topic_for_event
from strato.errors import InvalidInput

REQUESTER = {"client_id": "strato-tests", "iss": "https://auth.east.example", "sub": "alice"}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def item() -> dict[str, Any]:
    return next(generate_items(1, seed=11))


@pytest.fixture(scope="module")
def cordex_item() -> dict[str, Any]:
    return next(generate_items(1, project="CORDEX", seed=11))


def _events(item: dict[str, Any]) -> dict[str, Event]:
    first = next(iter(item["assets"]))
    return {
        "create": create_event("CMIP6", item, requester=REQUESTER),
        "update": update_event("CMIP6", item, requester=REQUESTER),
        "merge-patch": patch_event(
            "CMIP6", item["id"], {"properties": {"latest": False}}, requester=REQUESTER
        ),
        "json-patch": patch_event(
            "CMIP6",
            item["id"],
            [{"op": "replace", "path": "/properties/size", "value": 1}],
            requester=REQUESTER,
        ),
        "retraction": retraction_event("CMIP6", item["id"], requester=REQUESTER),
        "replication": replication_event(
            "CMIP6",
            item["id"],
            {first: {"west": {"href": f"https://data.west.example/{first}"}}},
            requester=REQUESTER,
        ),
    }


KINDS = ["create", "update", "merge-patch", "json-patch", "retraction", "replication"]


# --- constructors and parsing -------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_each_constructor_roundtrips_through_parse_event(item: dict[str, Any], kind: str) -> None:
    event = _events(item)[kind]
    raw = event.to_json()
    again = parse_event(raw)
    assert again == event
    assert again.to_dict() == json.loads(raw)
    assert again.to_json() == raw
    assert again.item_id == item["id"]
    assert again.collection_id == "CMIP6"
    assert again.kind == {"create": "create", "update": "update"}.get(kind, "patch")
    meta = again.metadata
    assert UUID.match(meta.event_id)
    assert UUID.match(meta.request_id)
    assert meta.auth.requester_data.sub == "alice"
    assert meta.publisher.package == "strato"
    assert meta.schema_version == "1.0.0"
    assert meta.time.tzinfo is not None
    assert again.instance == f"{meta.request_id}:{meta.event_id}"


def test_envelope_fields_can_be_given(item: dict[str, Any]) -> None:
    when = datetime(2024, 7, 4, 14, 17, 35, tzinfo=UTC)
    event = create_event(
        "CMIP6",
        item,
        requester=REQUESTER,
        publisher={"package": "esgcet", "version": "5.3.0"},
        request_id="req-1",
        event_id="evt-1",
        time=when,
        auth_policy_id="ESGF-Publish-00012",
    )
    body = json.loads(event.to_json())
    assert body["metadata"]["time"] == "2024-07-04T14:17:35Z"
    assert body["metadata"]["publisher"] == {"package": "esgcet", "version": "5.3.0"}
    assert body["metadata"]["auth"]["auth_policy_id"] == "ESGF-Publish-00012"
    assert event.instance == "req-1:evt-1"
    # The item travels as it was given, byte for byte once serialised.
    assert body["data"]["payload"]["item"] == item


def test_unknown_members_are_kept(item: dict[str, Any]) -> None:
    body = create_event("CMIP6", item, requester=REQUESTER).to_dict()
    body["data"]["version"] = "1.0.0"
    body["metadata"]["auth"]["requester_data"]["identity_provider"] = "idp"
    assert parse_event(json.dumps(body).encode()).to_dict() == body


def test_constructors_check_what_they_build(item: dict[str, Any]) -> None:
    broken = copy.deepcopy(item)
    del broken["properties"]["datetime"]
    with pytest.raises(InvalidInput, match=r"data\.payload\.item\.properties\.datetime"):
        create_event("CMIP6", broken, requester=REQUESTER)
    with pytest.raises(InvalidInput, match=r"metadata\.auth\.requester_data\.sub"):
        create_event("CMIP6", item, requester={"client_id": "c", "iss": "i"})
    with pytest.raises(InvalidInput, match=r"data\.payload\.patch: a patch is a JSON merge"):
        patch_event("CMIP6", item["id"], "latest=false", requester=REQUESTER)  # type: ignore[arg-type]
    ops: list[Any] = [{"op": "remove", "path": "/a"}, 7]
    with pytest.raises(InvalidInput, match=r"data\.payload\.patch\[1\]: Input should be"):
        patch_event("CMIP6", item["id"], ops, requester=REQUESTER)
    with pytest.raises(InvalidInput, match=r"metadata\.time: Input should have timezone info"):
        create_event("CMIP6", item, requester=REQUESTER, time=datetime(2024, 1, 1))
    with pytest.raises(InvalidInput, match="at least one replica"):
        replication_event("CMIP6", item["id"], {}, requester=REQUESTER)
    with pytest.raises(InvalidInput, match="no href"):
        replication_event("CMIP6", item["id"], {"a": {"west": {}}}, requester=REQUESTER)


def _body(item: dict[str, Any]) -> dict[str, Any]:
    return create_event("CMIP6", item, requester=REQUESTER).to_dict()


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = body
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value

    return change


_DELETE = object()


def _patch(ops: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        payload = body["data"]["payload"]
        payload.update(method="PATCH", item_id=payload["item"]["id"], patch=ops)
        del payload["item"]

    return change


ITEM = "data.payload.item"
PROPS = f"{ITEM}.properties"
PATCH = "data.payload.patch"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (_set(f"{PROPS}.datetime", _DELETE), f"{PROPS}.datetime"),
        (_set(f"{PROPS}.start_datetime", "1850-01-16"), f"{PROPS}.start_datetime"),
        (_set(f"{PROPS}.end_datetime", "1800-01-01T00:00:00Z"), f"{PROPS}.end_datetime"),
        (_set(f"{ITEM}.bbox", [-180, -90, 180]), f"{ITEM}.bbox"),
        (_set(f"{ITEM}.bbox", _DELETE), f"{ITEM}.bbox"),
        (_set(f"{ITEM}.bbox", ["-180", -90, 180, 90]), f"{ITEM}.bbox[0]"),
        (_set(f"{ITEM}.bbox", [-180, 90, 180, -90]), f"{ITEM}.bbox"),
        (_set(f"{ITEM}.assets", []), f"{ITEM}.assets"),
        (_set(f"{ITEM}.geometry", {"type": "Polygon"}), f"{ITEM}.geometry"),
        (_set(f"{ITEM}.links", _DELETE), f"{ITEM}.links"),
        (_set(f"{ITEM}.links", [{"href": "x"}]), f"{ITEM}.links[0].rel"),
        (_set(f"{ITEM}.type", "FeatureCollection"), f"{ITEM}.type"),
        (_set(f"{ITEM}.id", ""), f"{ITEM}.id"),
        (_set("data.payload.method", "DELETE"), "data.payload.method"),
        (_set("data.payload.collection_id", 7), "data.payload.collection_id"),
        (_set("data.type", "ZARR"), "data.type"),
        (_set("metadata.event_id", _DELETE), "metadata.event_id"),
        (_set("metadata.time", "2024-07-04T14:17:35"), "metadata.time"),
        (_set("metadata.auth.requester_data", "alice"), "metadata.auth.requester_data"),
        (_patch([{"op": "add", "path": "/a"}]), f"{PATCH}[0].value"),
        (_patch([{"op": "test", "path": "/a", "value": 1}, {"op": "frob"}]), f"{PATCH}[1].op"),
        (_patch([{"op": "move", "path": "/a"}]), f"{PATCH}[0].from"),
        (_patch([{"op": "remove", "path": "properties/x"}]), f"{PATCH}[0].path"),
        (_patch("latest=false"), PATCH),
    ],
)
def test_parse_event_names_the_json_path(
    item: dict[str, Any], change: Callable[[dict[str, Any]], None], path: str
) -> None:
    body = _body(item)
    change(body)
    with pytest.raises(InvalidInput) as caught:
        parse_event(json.dumps(body).encode())
    assert f"{path}:" in caught.value.detail
    assert path in [e["field"] for e in caught.value.errors]


def _item_asset_path(item: dict[str, Any]) -> str:
    return f"data.payload.item.assets.{next(iter(item['assets']))}.href"


def test_asset_problems_name_the_asset(item: dict[str, Any]) -> None:
    body = _body(item)
    first = next(iter(body["data"]["payload"]["item"]["assets"].values()))
    del first["href"]
    with pytest.raises(InvalidInput) as caught:
        parse_event(json.dumps(body))
    assert _item_asset_path(item) in caught.value.detail


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{", "not valid JSON: Expecting property name enclosed in double quotes at line 1"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"x": NaN}', "NaN is not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b"[]", "$: an event is a JSON object"),
        (b"{}", "data: Field required"),
    ],
)
def test_parse_event_rejects_what_is_not_an_event(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        parse_event(raw)


def test_many_problems_are_listed_and_summarised(item: dict[str, Any]) -> None:
    body = _body(item)
    body["metadata"] = {}
    with pytest.raises(InvalidInput) as caught:
        validate_event(body)
    assert len(caught.value.errors) == 6
    assert "(and 1 more)" in caught.value.detail


# --- ESGF's own models --------------------------------------------------------------------


def _esgf(package: str) -> Any:
    """ESGF's event models: ``<package>.models.kafka``, or ``.events`` in it (newer releases)."""
    pytest.importorskip(package, reason=f"{package} is not installed (pip install it to check)")
    for name in (f"{package}.models.kafka.events", f"{package}.models.kafka"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    pytest.fail(f"{package} has no event models where they used to be")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("package", ["esgf_core_utils", "esgf_playground_utils"])
def test_events_validate_against_esgf_models(item: dict[str, Any], kind: str, package: str) -> None:
    esgf = _esgf(package)
    raw = _events(item)[kind].to_json()
    parsed = esgf.KafkaEvent.model_validate_json(raw)
    method = json.loads(raw)["data"]["payload"]["method"]
    assert parsed.data.payload.method == method
    expected = {"POST": "CreatePayload", "PUT": "UpdatePayload", "PATCH": "PatchPayload"}[method]
    assert type(parsed.data.payload).__name__ == expected


def test_generated_items_of_both_projects_validate_as_esgf_events() -> None:
    esgf = _esgf("esgf_core_utils")
    for project in ("CMIP6", "CORDEX"):
        for generated in generate_items(40, project=project, seed=5):
            raw = create_event(project, generated, requester=REQUESTER).to_json()
            esgf.KafkaEvent.model_validate_json(raw)


def test_error_event_validates_against_esgf_core(item: dict[str, Any]) -> None:
    esgf = _esgf("esgf_core_utils")
    for event in _events(item).values():
        failed = error_event(
            event.to_json(),
            status=409,
            title="Conflict",
            detail="already there",
            type="about:blank",
        )
        esgf.KafkaErrorEvent.model_validate(failed)


# --- error events -------------------------------------------------------------------------


def test_error_event_carries_the_original_and_the_problem(item: dict[str, Any]) -> None:
    event = create_event("CMIP6", item, requester=REQUESTER, request_id="r-9", event_id="e-3")
    raw = event.to_json()
    failed = error_event(
        raw,
        status=400,
        title="Invalid input",
        detail="data.payload.item.properties.datetime: Field required",
        type="urn:strato:problem:invalid-input",
    )
    original = json.loads(raw)
    assert failed["metadata"] == original["metadata"]
    assert failed["data"]["payload"]["item"] == item
    # Newer ESGF error events want the item id in the payload, even of a create.
    assert failed["data"]["payload"]["item_id"] == item["id"]
    assert failed["error"] == {
        "type": "urn:strato:problem:invalid-input",
        "title": "Invalid input",
        "status": 400,
        "detail": "data.payload.item.properties.datetime: Field required",
        "instance": "r-9:e-3",
    }
    # From a dict the same, and the dict given is left alone.
    given = copy.deepcopy(original)
    assert (
        error_event(given, status=400, title="Invalid input", detail="x")["error"]["instance"]
        == "r-9:e-3"
    )
    assert given == original


@pytest.mark.parametrize(
    ("raw", "carried"),
    [(b"\xffnot json", "\ufffdnot json"), (b"[1, 2]", [1, 2]), ('"text"', "text")],
)
def test_error_event_of_something_that_is_not_an_event(raw: bytes | str, carried: Any) -> None:
    failed = error_event(raw, status=400, title="Invalid input", detail="not JSON")
    assert failed["original"] == carried
    assert failed["error"]["instance"] == "unknown:unknown"
    assert failed["error"]["type"] == "about:blank"


def test_error_event_status_is_an_error() -> None:
    with pytest.raises(InvalidInput, match="4xx or 5xx"):
        error_event(b"{}", status=200, title="OK", detail="fine")


# --- retraction and replication -----------------------------------------------------------


def test_retraction_gives_the_retracted_item(item: dict[str, Any]) -> None:
    before = copy.deepcopy(item)
    event = parse_event(retraction_event("CMIP6", item["id"], requester=REQUESTER).to_json())
    assert event.patch is not None
    after = apply_patch(item, event.patch)
    assert after["properties"]["latest"] is False
    assert after["properties"]["retracted"] is True
    assert after["assets"] == {}
    expected = copy.deepcopy(before)
    expected["properties"].update(latest=False, retracted=True)
    expected["assets"] = {}
    assert after == expected
    assert item == before


def test_replication_adds_alternate_assets(item: dict[str, Any]) -> None:
    keys = list(item["assets"])
    replicas = {
        key: {"west": {"href": f"https://data.west.example/thredds/fileServer/{key}"}}
        for key in keys
    }
    event = replication_event("CMIP6", item["id"], replicas, requester=REQUESTER)
    assert event.patch == [
        {
            "op": "add",
            "path": f"/assets/{key}/alternate/west",
            "value": {"alternate:name": "west", "href": replicas[key]["west"]["href"]},
        }
        for key in keys
    ]
    after = apply_patch(item, parse_event(event.to_json()).patch or [])
    for key in keys:
        asset = after["assets"][key]
        assert asset["alternate"] == {"west": {"alternate:name": "west", **replicas[key]["west"]}}
        assert asset["href"] == item["assets"][key]["href"]
        assert asset["alternate:name"] == "east"
    # A second replica sits beside the first.
    more = replication_event(
        "CMIP6", item["id"], {keys[0]: {"north": {"href": "https://n/x.nc"}}}, requester=REQUESTER
    )
    again = apply_patch(after, more.patch or [])
    assert set(again["assets"][keys[0]]["alternate"]) == {"west", "north"}


def test_replication_needs_the_alternate_object(item: dict[str, Any]) -> None:
    # RFC 6902 adds a member only to an existing object; ESGF's shape targets
    # /assets/<key>/alternate/<name>, so an asset without "alternate" is an error.
    bare = copy.deepcopy(item)
    for asset in bare["assets"].values():
        del asset["alternate"]
    key = next(iter(bare["assets"]))
    event = replication_event(
        "CMIP6", bare["id"], {key: {"west": {"href": "h"}}}, requester=REQUESTER
    )
    with pytest.raises(InvalidInput, match=r"patch\[0\] \(add\): .*alternate/west does not exist"):
        apply_patch(bare, event.patch or [])


def test_replica_names_and_keys_are_pointer_escaped(item: dict[str, Any]) -> None:
    doc = {"assets": {"a/b~c": {"href": "h", "alternate": {}}}}
    event = replication_event(
        "CMIP6", item["id"], {"a/b~c": {"x/y": {"href": "h2"}}}, requester=REQUESTER
    )
    value = {"alternate:name": "x/y", "href": "h2"}
    assert event.patch == [{"op": "add", "path": "/assets/a~1b~0c/alternate/x~1y", "value": value}]
    assert apply_patch(doc, event.patch)["assets"]["a/b~c"]["alternate"]["x/y"]["href"] == "h2"


# --- JSON Patch (RFC 6902) and merge patch (RFC 7396) -------------------------------------

# Cases from RFC 6902 appendix A, and the corners around them.
JSON_PATCH_OK = [
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"baz": "qux", "foo": "bar"}),
    (
        {"foo": ["bar", "baz"]},
        [{"op": "add", "path": "/foo/1", "value": "qux"}],
        {"foo": ["bar", "qux", "baz"]},
    ),
    ({"foo": [1]}, [{"op": "add", "path": "/foo/-", "value": 2}], {"foo": [1, 2]}),
    ({"foo": [1]}, [{"op": "add", "path": "/foo/1", "value": 2}], {"foo": [1, 2]}),
    ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
    (
        {"baz": "qux", "foo": "bar"},
        [{"op": "replace", "path": "/baz", "value": "boo"}],
        {"baz": "boo", "foo": "bar"},
    ),
    (
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
        {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
    ),
    (
        {"foo": ["all", "grass", "cows", "eat"]},
        [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
        {"foo": ["all", "cows", "eat", "grass"]},
    ),
    ({"a": {"b": 1}}, [{"op": "copy", "from": "/a", "path": "/c"}], {"a": {"b": 1}, "c": {"b": 1}}),
    ({"a": 1}, [{"op": "move", "from": "/a", "path": "/a"}], {"a": 1}),
    (
        {"baz": "qux", "foo": ["a", 2, "c"]},
        [
            {"op": "test", "path": "/baz", "value": "qux"},
            {"op": "test", "path": "/foo/1", "value": 2},
        ],
        {"baz": "qux", "foo": ["a", 2, "c"]},
    ),
    (
        {"foo": "bar"},
        [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
        {"foo": "bar", "child": {"grandchild": {}}},
    ),
    (
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
        {"foo": "bar", "baz": "qux"},
    ),
    (
        {"foo": ["bar"]},
        [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
        {"foo": ["bar", ["abc", "def"]]},
    ),
    (
        {"/": 9, "~1": 10},
        [{"op": "test", "path": "/~01", "value": 10}, {"op": "replace", "path": "/~1", "value": 0}],
        {"/": 0, "~1": 10},
    ),
    ({"": 1}, [{"op": "replace", "path": "/", "value": 2}], {"": 2}),
    ({"a": 1}, [{"op": "replace", "path": "", "value": {"b": 2}}], {"b": 2}),
    ({"n": 1}, [{"op": "test", "path": "/n", "value": 1.0}], {"n": 1}),
    (
        {"a": {"x": [1, {"y": None}]}},
        [{"op": "test", "path": "/a", "value": {"x": [1, {"y": None}]}}],
        {"a": {"x": [1, {"y": None}]}},
    ),
    ({"a": 1}, [], {"a": 1}),
    (
        {"x": 1, "y": 2, "z": 3},
        [{"op": "replace", "path": "/y", "value": 0}],
        {"x": 1, "y": 0, "z": 3},
    ),
    ({"l": [1, 2, 3]}, [{"op": "replace", "path": "/l/0", "value": 9}], {"l": [9, 2, 3]}),
]


@pytest.mark.parametrize(("doc", "patch", "expected"), JSON_PATCH_OK)
def test_json_patch(doc: dict[str, Any], patch: list[dict[str, Any]], expected: Any) -> None:
    before = copy.deepcopy(doc)
    after = apply_patch(doc, patch)
    assert after == expected
    assert doc == before
    if patch and patch[0]["op"] == "replace":
        # A replaced member keeps its place.
        assert list(after) == list(expected)


JSON_PATCH_FAILS = [
    ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}], 0, "not the tested value"),
    (
        {"a": 1},
        [{"op": "replace", "path": "/a", "value": 2}, {"op": "test", "path": "/a", "value": 1}],
        1,
        "not the tested value",
    ),
    ({"n": 1}, [{"op": "test", "path": "/n", "value": True}], 0, "not the tested value"),
    ({"n": "1"}, [{"op": "test", "path": "/n", "value": 1}], 0, "not the tested value"),
    (
        {"foo": "bar"},
        [{"op": "add", "path": "/baz/bat", "value": "qux"}],
        0,
        "/baz/bat does not exist",
    ),
    ({"foo": "bar"}, [{"op": "remove", "path": "/baz"}], 0, "/baz does not exist"),
    ({"foo": "bar"}, [{"op": "replace", "path": "/baz", "value": 1}], 0, "/baz does not exist"),
    ({"l": [1]}, [{"op": "replace", "path": "/l/1", "value": 1}], 0, "out of range"),
    ({"s": "x"}, [{"op": "replace", "path": "/s/0", "value": 1}], 0, "/s/0 does not exist"),
    ({"foo": [1]}, [{"op": "add", "path": "/foo/2", "value": 1}], 0, "out of range"),
    ({"foo": [1, 2]}, [{"op": "remove", "path": "/foo/01"}], 0, "not an array index"),
    ({"foo": [1]}, [{"op": "remove", "path": "/foo/-"}], 0, "not an array index"),
    ({"foo": "bar"}, [{"op": "add", "path": "/foo/x", "value": 1}], 0, "not an object or array"),
    ({"a": {"b": 1}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}], 0, "own child"),
    ({"a": 1}, [{"op": "copy", "from": "/nope", "path": "/b"}], 0, "/nope does not exist"),
    ({"a": 1}, [{"op": "remove", "path": ""}], 0, "whole document"),
    ({"a": 1}, [{"op": "add", "path": "a", "value": 1}], 0, "not a JSON Pointer"),
    ({"a": 1}, [{"op": "remove", "path": "/~2"}], 0, "not a JSON Pointer"),
    ({"a": 1}, [{"op": "add", "path": "/b"}], 0, "'value' is missing"),
    ({"a": 1}, [{"op": "move", "path": "/b"}], 0, "'from' is missing"),
    ({"a": 1}, [{"op": "frob", "path": "/a"}], 0, "unknown operation 'frob'"),
    ({"a": 1}, [{"path": "/a"}], 0, "unknown operation None"),
    ({"a": 1}, [{"op": "add", "path": "/b", "value": 1}, "add"], 1, "an operation is an object"),
    ({"a": 1}, [{"op": "replace", "path": "", "value": [1]}], None, "no longer an object"),
]


@pytest.mark.parametrize(("doc", "patch", "index", "message"), JSON_PATCH_FAILS)
def test_json_patch_errors_name_the_operation(
    doc: dict[str, Any], patch: list[Any], index: int | None, message: str
) -> None:
    before = copy.deepcopy(doc)
    with pytest.raises(InvalidInput, match=re.escape(message)) as caught:
        apply_patch(doc, patch)
    if index is not None:
        assert caught.value.detail.startswith(f"patch[{index}]")
        assert caught.value.errors[0]["field"] == f"patch[{index}]"
    # Atomic: the document is untouched whatever failed.
    assert doc == before


# RFC 7396 appendix A.
MERGE_CASES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({"a": "foo"}, {"a": None, "x": None}, {}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ({"a": {"b": 1}}, {}, {"a": {"b": 1}}),
]


@pytest.mark.parametrize(("doc", "patch", "expected"), MERGE_CASES)
def test_merge_patch(doc: dict[str, Any], patch: dict[str, Any], expected: Any) -> None:
    before = copy.deepcopy(doc)
    assert apply_patch(doc, patch) == expected
    assert doc == before


def test_merge_patch_on_an_item(item: dict[str, Any]) -> None:
    after = apply_patch(item, {"properties": {"latest": False, "cmip6:pid": None, "note": "x"}})
    assert after["properties"]["latest"] is False
    assert after["properties"]["note"] == "x"
    assert after["assets"] == item["assets"]
    assert item["properties"]["latest"] is True


def test_patch_that_is_neither() -> None:
    with pytest.raises(InvalidInput, match="merge patch"):
        apply_patch({}, "replace")  # type: ignore[arg-type]


# --- topics -------------------------------------------------------------------------------


def test_single_topic(item: dict[str, Any]) -> None:
    assert topic_for(item, "single") == Route(SINGLE_TOPIC, item["id"])
    assert topic_for(item) == ("esgf.events", item["id"])


def test_drs_topic(item: dict[str, Any], cordex_item: dict[str, Any]) -> None:
    props = item["properties"]
    expected = f"CMIP6.{props['cmip6:experiment_id']}.{props['cmip6:source_id']}"
    assert topic_for(item, "drs") == (expected, item["id"])
    cprops = cordex_item["properties"]
    assert topic_for(cordex_item, "drs") == (
        f"CORDEX.{cprops['cordex:driving_experiment_id']}.{cprops['cordex:source_id']}",
        cordex_item["id"],
    )


@pytest.mark.parametrize("strategy", ["single", "drs"])
def test_every_event_of_an_item_takes_one_route(item: dict[str, Any], strategy: Any) -> None:
    routes = {topic_for_event(event, strategy) for event in _events(item).values()}
    assert routes == {topic_for(item, strategy)}


def test_drs_topic_from_properties_when_the_id_is_not_a_drs(item: dict[str, Any]) -> None:
    renamed = {**item, "id": "my-dataset"}
    props = item["properties"]
    assert topic_for(renamed, "drs").topic == (
        f"CMIP6.{props['cmip6:experiment_id']}.{props['cmip6:source_id']}"
    )


def test_routing_errors(item: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match="unknown topic strategy"):
        topic_for(item, "hash")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="no mip_era"):
        topic_for({"id": "x", "properties": {}}, "drs")
    with pytest.raises(InvalidInput, match="cannot be part of a topic"):
        topic_for(
            {"id": "x", "properties": {"cmip6:experiment_id": "a.b", "cmip6:source_id": "s"}},
            "drs",
        )
    with pytest.raises(InvalidInput, match="needs an id"):
        topic_for({}, "single")
    patch = patch_event("CMIP6", "not-a-drs-id", {"a": 1}, requester=REQUESTER)
    with pytest.raises(InvalidInput, match="no mip_era"):
        topic_for_event(patch, "drs")
    assert topic_for_event(patch, "single") == (SINGLE_TOPIC, "not-a-drs-id")
