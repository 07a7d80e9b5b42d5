"""STAC transactions as ESGF events: what a POST, PUT, PATCH or DELETE asks for, checked.

A write never touches the node's database: it becomes events on the bus, which every
node of the federation (this one included) applies with its consumer. The events are
built and validated here; a problem is reported with the JSON path of the request body
(``features[2].properties.datetime``), not of the event envelope.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from stac_pydantic import Collection as StacCollection

from strato.catalog.model.events import (
    Event,
    Requester,
    create_event,
    patch_event,
    retraction_event,
    update_event,
)
from strato.catalog.store import COLLECTION_ID_LEN, ITEM_ID_LEN
from strato.errors import InvalidInput

CLIENT_ID = "strato"

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
PATCH_TYPES = ("application/json", MERGE_PATCH, JSON_PATCH)

# JSON Patch operations that write at their path.
_WRITING_OPS = ("add", "replace", "remove", "move", "copy")


def requester(user: str | None, node_url: str) -> Requester:
    """Who asks, as ESGF records it: this software, the node's URL, the user's name."""
    return Requester(client_id=CLIENT_ID, iss=node_url, sub=user or "anonymous")


def new_request_id() -> str:
    return str(uuid.uuid4())


def _problem(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", errors=[{"field": field, "message": message}])


def _rebase(field: str, prefix: str) -> str:
    """An event's JSON path as a path in the request body under ``prefix``."""
    for origin in ("data.payload.item", "data.payload.patch"):
        if field == origin or field.startswith((origin + ".", origin + "[")):
            rest = field[len(origin) :]
            path = f"{prefix}{rest}" if prefix else rest.lstrip(".")
            return path or "$"
    if field.startswith("data.payload."):
        return field[len("data.payload.") :]
    return field


def _in_body(what: str, prefix: str, build: Callable[[], Event]) -> Event:
    try:
        return build()
    except InvalidInput as exc:
        if not exc.errors:
            raise
        found = [{**e, "field": _rebase(str(e.get("field", "")), prefix)} for e in exc.errors]
        shown = "; ".join(f"{e['field']}: {e.get('message', 'invalid')}" for e in found[:5])
        more = f" (and {len(found) - 5} more)" if len(found) > 5 else ""
        raise InvalidInput(f"invalid {what}: {shown}{more}", errors=found) from None


def check_ids(collection_id: str, item_id: str | None = None) -> None:
    if not 0 < len(collection_id) <= COLLECTION_ID_LEN:
        raise _problem("collection_id", f"has 1 to {COLLECTION_ID_LEN} characters")
    if item_id is not None and not 0 < len(item_id) <= ITEM_ID_LEN:
        raise _problem("item_id", f"has 1 to {ITEM_ID_LEN} characters")


def _placed(item: Any, collection_id: str, where: str) -> Any:
    """The item with its collection: the path's, which the body may repeat but not contradict."""
    if not isinstance(item, Mapping):
        return item
    named = item.get("collection")
    if named is not None and named != collection_id:
        raise _problem(
            f"{where}collection" if where else "collection",
            f"{named!r} differs from the collection {collection_id!r} of the URL",
        )
    item_id = item.get("id")
    if isinstance(item_id, str) and len(item_id) > ITEM_ID_LEN:
        raise _problem(f"{where}id" if where else "id", f"has at most {ITEM_ID_LEN} characters")
    return {**item, "collection": collection_id}


def _creating(
    collection_id: str, item: Mapping[str, Any], who: Requester, request_id: str
) -> Callable[[], Event]:
    return lambda: create_event(collection_id, item, requester=who, request_id=request_id)


def create_events(
    collection_id: str,
    body: Mapping[str, Any],
    who: Requester,
    request_id: str,
    *,
    max_items: int,
) -> list[Event]:
    """One create event per item: ``body`` is an Item or a FeatureCollection of them."""
    check_ids(collection_id)
    if body.get("type") != "FeatureCollection":
        item = _placed(body, collection_id, "")
        return [
            _in_body(
                "item",
                "",
                lambda: create_event(collection_id, item, requester=who, request_id=request_id),
            )
        ]
    features = body.get("features")
    if not isinstance(features, list) or not features:
        raise _problem("features", "a FeatureCollection holds a non-empty list of items")
    if len(features) > max_items:
        raise _problem("features", f"at most {max_items} items per request, not {len(features)}")
    events: list[Event] = []
    seen: dict[str, int] = {}
    for index, feature in enumerate(features):
        where = f"features[{index}]"
        if not isinstance(feature, Mapping):
            raise _problem(where, "an item is a JSON object")
        item = _placed(feature, collection_id, f"{where}.")
        item_id = item.get("id")
        if isinstance(item_id, str):
            if item_id in seen:
                raise _problem(f"{where}.id", f"{item_id!r} is also features[{seen[item_id]}]")
            seen[item_id] = index
        events.append(_in_body("item", where, _creating(collection_id, item, who, request_id)))
    return events


def update_events(
    collection_id: str, item_id: str, body: Mapping[str, Any], who: Requester, request_id: str
) -> list[Event]:
    """Replace an item whole; the body's id must be the URL's."""
    check_ids(collection_id, item_id)
    if body.get("id") != item_id:
        raise _problem("id", f"{body.get('id')!r} differs from the item {item_id!r} of the URL")
    item = _placed(body, collection_id, "")
    return [
        _in_body(
            "item",
            "",
            lambda: update_event(
                collection_id, item, item_id=item_id, requester=who, request_id=request_id
            ),
        )
    ]


def _patch_kind(content_type: str | None, patch: Any) -> str:
    media = (content_type or "application/json").split(";")[0].strip().lower()
    if media == JSON_PATCH:
        if not isinstance(patch, list):
            raise _problem("$", f"{JSON_PATCH} is a list of JSON Patch operations")
        return "json-patch"
    if media == MERGE_PATCH:
        if not isinstance(patch, dict):
            raise _problem("$", f"{MERGE_PATCH} is a JSON object")
        return "merge"
    if isinstance(patch, dict):
        return "merge"
    if isinstance(patch, list):
        return "json-patch"
    raise _problem("$", "a patch is a JSON object (merge patch) or a list of operations")


def _check_identity(kind: str, patch: Any, collection_id: str, item_id: str) -> None:
    """A patch may not move the item to another id or collection."""
    if kind == "merge":
        for key, own in (("id", item_id), ("collection", collection_id)):
            if key in patch and patch[key] != own:
                raise _problem(key, f"a patch cannot change the item's {key}")
        return
    for index, op in enumerate(patch):
        if not isinstance(op, Mapping) or op.get("op") not in _WRITING_OPS:
            continue
        for member in ("path", "from") if op.get("op") == "move" else ("path",):
            if op.get(member) in ("/id", "/collection", ""):
                raise _problem(
                    f"[{index}].{member}", "a patch cannot change the item's id or collection"
                )


def patch_events(
    collection_id: str,
    item_id: str,
    patch: Any,
    content_type: str | None,
    who: Requester,
    request_id: str,
) -> list[Event]:
    """A merge patch (RFC 7396) or JSON Patch (RFC 6902), by content type or shape."""
    check_ids(collection_id, item_id)
    kind = _patch_kind(content_type, patch)
    _check_identity(kind, patch, collection_id, item_id)
    doc: Mapping[str, Any] | Sequence[Mapping[str, Any]] = patch
    return [
        _in_body(
            "patch",
            "",
            lambda: patch_event(collection_id, item_id, doc, requester=who, request_id=request_id),
        )
    ]


def retract_events(
    collection_id: str, item_id: str, who: Requester, request_id: str
) -> list[Event]:
    """DELETE in ESGF terms: the record stays, no longer latest, retracted, without assets."""
    check_ids(collection_id, item_id)
    return [retraction_event(collection_id, item_id, requester=who, request_id=request_id)]


def checked_collection(body: Any) -> dict[str, Any]:
    """A STAC Collection to create, checked (a 400 names the JSON path of each problem)."""
    if not isinstance(body, Mapping):
        raise _problem("$", "a collection is a JSON object")
    try:
        StacCollection.model_validate(body)
    except ValidationError as exc:
        found = [
            {"field": _path(e["loc"]), "message": str(e["msg"])}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        shown = "; ".join(f"{e['field']}: {e['message']}" for e in found[:5])
        more = f" (and {len(found) - 5} more)" if len(found) > 5 else ""
        raise InvalidInput(f"invalid collection: {shown}{more}", errors=found) from None
    if not 0 < len(body["id"]) <= COLLECTION_ID_LEN:
        raise _problem("id", f"has 1 to {COLLECTION_ID_LEN} characters")
    return dict(body)


def _path(loc: Sequence[Any]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "$"


def accepted(request_id: str, events: Sequence[Event], monitor: str) -> dict[str, Any]:
    """The body of a 202: what to follow to learn how each node applied the events."""
    return {
        "request_id": request_id,
        "event_ids": [e.metadata.event_id for e in events],
        "status": "pending",
        "links": [{"rel": "monitor", "type": "application/json", "href": monitor}],
    }
