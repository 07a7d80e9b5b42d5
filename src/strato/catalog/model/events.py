"""ESGF's event envelope: models, constructors and parsing (patches are applied by
:mod:`strato.catalog.model.json_patch`, events routed by :mod:`strato.catalog.model.topics`).

An event is what ESGF's next-generation publisher puts on its stream (the models of
``esgf-playground-utils`` and ``esgf-core-utils``)::

    {"data": {"type": "STAC", "payload": PAYLOAD},
     "metadata": {"auth": {"auth_policy_id": null,
                           "requester_data": {"client_id": ..., "iss": ..., "sub": ...}},
                  "event_id": ..., "request_id": ..., "publisher": {"package": ..., "version": ...},
                  "time": "2024-07-04T14:17:35Z", "schema_version": "1.0.0"}}

where PAYLOAD is a create ``{"method": "POST", "collection_id", "item"}``, an update
``{"method": "PUT", "collection_id", "item_id", "item"}`` or a patch ``{"method": "PATCH",
"collection_id", "item_id", "patch"}``, the patch being a JSON merge patch (RFC 7396) or a
list of JSON Patch operations (RFC 6902). Retraction and replication are patches in the
shapes ESGF's validators recognise. An error event is the original event plus an RFC 9457
problem under ``error`` (esgf-core-utils' ``KafkaErrorEvent``).

Items and patches are kept as the JSON they came as: they are checked (with the JSON path
of what is wrong) but never rewritten, so an event re-serialises to what was sent.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypedDict, Unpack

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
)

from strato import __version__, jsonio
from strato.catalog.model.event_content import OP_NAMES, NonEmpty, Patch, StacItem
from strato.errors import InvalidInput

SCHEMA_VERSION = "1.0.0"
SINGLE_TOPIC = "esgf.events"


class _Open(BaseModel):
    # Members we do not model are kept, so an event re-serialises as it came (ESGF's
    # own examples carry e.g. ``data.version``).
    model_config = ConfigDict(extra="allow")


# --- the envelope -----------------------------------------------------------------------


class Requester(_Open):
    """Who asked for the change: an indication, not a verified identity."""

    client_id: str
    iss: str
    sub: str


class Auth(_Open):
    auth_policy_id: str | None = None
    requester_data: Requester


class Publisher(_Open):
    """The software that published the event."""

    package: str
    version: str


class Metadata(_Open):
    auth: Auth
    event_id: NonEmpty
    request_id: NonEmpty
    publisher: Publisher
    time: AwareDatetime
    schema_version: str


# --- payloads and the event ---------------------------------------------------------------


class CreatePayload(_Open):
    method: Literal["POST"]
    collection_id: NonEmpty
    item: StacItem


class UpdatePayload(_Open):
    method: Literal["PUT"]
    collection_id: NonEmpty
    item_id: NonEmpty
    item: StacItem


class PatchPayload(_Open):
    method: Literal["PATCH"]
    collection_id: NonEmpty
    item_id: NonEmpty
    patch: Patch


Payload = Annotated[CreatePayload | UpdatePayload | PatchPayload, Field(discriminator="method")]


class Data(_Open):
    type: Literal["STAC"]
    payload: Payload


class Event(_Open):
    """One event of the stream; build with the ``*_event`` functions or :func:`parse_event`."""

    data: Data
    metadata: Metadata

    @property
    def kind(self) -> Literal["create", "update", "patch"]:
        payload = self.data.payload
        if isinstance(payload, CreatePayload):
            return "create"
        return "update" if isinstance(payload, UpdatePayload) else "patch"

    @property
    def collection_id(self) -> str:
        return self.data.payload.collection_id

    @property
    def item_id(self) -> str:
        payload = self.data.payload
        if isinstance(payload, CreatePayload):
            return str(payload.item["id"])
        return payload.item_id

    @property
    def item(self) -> dict[str, Any] | None:
        """The whole item of a create or update; None for a patch."""
        payload = self.data.payload
        return None if isinstance(payload, PatchPayload) else payload.item

    @property
    def patch(self) -> dict[str, Any] | list[dict[str, Any]] | None:
        payload = self.data.payload
        return payload.patch if isinstance(payload, PatchPayload) else None

    @property
    def instance(self) -> str:
        """``<request_id>:<event_id>``, the RFC 9457 ``instance`` of a problem with this event."""
        return f"{self.metadata.request_id}:{self.metadata.event_id}"

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


# --- parsing ------------------------------------------------------------------------------

_METHOD_TAGS = ("POST", "PUT", "PATCH")


def _field_path(error: Mapping[str, Any]) -> str:
    parts = list(error.get("loc", ()))
    # Discriminated unions put the tag they chose into the location; a reader of the
    # event never sees it, so it goes.
    if len(parts) > 2 and parts[:2] == ["data", "payload"] and parts[2] in _METHOD_TAGS:
        del parts[2]
    if (
        len(parts) > 4
        and parts[2] == "patch"
        and isinstance(parts[3], int)
        and parts[4] in OP_NAMES
    ):
        del parts[4]
    if error.get("type") in ("union_tag_invalid", "union_tag_not_found"):
        parts.append(str(error.get("ctx", {}).get("discriminator", "")).strip("'"))
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "$"


def _message(error: Mapping[str, Any]) -> str:
    if not error.get("loc") and error.get("type") == "model_type":
        return "an event is a JSON object"
    return str(error.get("msg", "invalid"))


def _invalid(exc: ValidationError, what: str = "event") -> InvalidInput:
    found = [
        {"field": _field_path(e), "message": _message(e)}
        for e in exc.errors(include_url=False, include_input=False)
    ]
    shown = "; ".join(f"{e['field']}: {e['message']}" for e in found[:5])
    more = f" (and {len(found) - 5} more)" if len(found) > 5 else ""
    return InvalidInput(f"invalid {what}: {shown}{more}", errors=found)


def validate_event(obj: Any) -> Event:
    """An already decoded event, checked; InvalidInput names the JSON path of each problem."""
    try:
        return Event.model_validate(obj)
    except ValidationError as exc:
        raise _invalid(exc) from None


def _decode(raw: bytes | bytearray | memoryview | str) -> Any:
    try:
        return jsonio.loads(raw)
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"event is not UTF-8: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"event is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:
        raise InvalidInput(f"event is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidInput("event is not valid JSON: nested too deeply") from None


def parse_event(raw: bytes | bytearray | memoryview | str) -> Event:
    """The event in ``raw``; InvalidInput says what is wrong and where (its JSON path)."""
    return validate_event(_decode(raw))


# --- constructors -------------------------------------------------------------------------


class EventOptions(TypedDict, total=False):
    """Envelope fields the constructors fill in unless given."""

    publisher: Publisher | Mapping[str, str]
    request_id: str
    event_id: str
    time: datetime
    auth_policy_id: str | None


def default_publisher() -> Publisher:
    return Publisher(package="strato", version=__version__)


def _envelope(
    payload: dict[str, Any],
    requester: Requester | Mapping[str, str],
    options: EventOptions,
) -> Event:
    publisher = options.get("publisher") or default_publisher()
    when = options.get("time") or datetime.now(UTC)
    metadata = {
        "auth": {
            "auth_policy_id": options.get("auth_policy_id"),
            "requester_data": _plain(requester),
        },
        "event_id": options.get("event_id") or str(uuid.uuid4()),
        "request_id": options.get("request_id") or str(uuid.uuid4()),
        "publisher": _plain(publisher),
        "time": when,
        "schema_version": SCHEMA_VERSION,
    }
    return validate_event({"data": {"type": "STAC", "payload": payload}, "metadata": metadata})


def _plain(value: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    return value.model_dump() if isinstance(value, BaseModel) else dict(value)


def create_event(
    collection_id: str,
    item: Mapping[str, Any],
    *,
    requester: Requester | Mapping[str, str],
    **options: Unpack[EventOptions],
) -> Event:
    """Publish a new item."""
    payload = {"method": "POST", "collection_id": collection_id, "item": dict(item)}
    return _envelope(payload, requester, options)


def update_event(
    collection_id: str,
    item: Mapping[str, Any],
    *,
    requester: Requester | Mapping[str, str],
    item_id: str | None = None,
    **options: Unpack[EventOptions],
) -> Event:
    """Replace an item whole; ``item_id`` (default: the item's id) names the one replaced."""
    payload = {
        "method": "PUT",
        "collection_id": collection_id,
        "item_id": item_id if item_id is not None else item.get("id"),
        "item": dict(item),
    }
    return _envelope(payload, requester, options)


def patch_event(
    collection_id: str,
    item_id: str,
    patch: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    requester: Requester | Mapping[str, str],
    **options: Unpack[EventOptions],
) -> Event:
    """Change part of an item: a merge patch (a mapping) or JSON Patch operations (a list)."""
    doc: Any = patch
    if isinstance(patch, Mapping):
        doc = dict(patch)
    elif not isinstance(patch, str | bytes):
        doc = [dict(op) if isinstance(op, Mapping) else op for op in patch]
    payload = {"method": "PATCH", "collection_id": collection_id, "item_id": item_id, "patch": doc}
    return _envelope(payload, requester, options)


def retraction_patch() -> list[dict[str, Any]]:
    """The three operations ESGF's ``retract`` validator expects, in its order."""
    return [
        {"op": "replace", "path": "/properties/latest", "value": False},
        {"op": "replace", "path": "/properties/retracted", "value": True},
        {"op": "replace", "path": "/assets", "value": {}},
    ]


def retraction_event(
    collection_id: str,
    item_id: str,
    *,
    requester: Requester | Mapping[str, str],
    **options: Unpack[EventOptions],
) -> Event:
    """Retract an item: no longer latest, retracted, and no assets to fetch."""
    return patch_event(collection_id, item_id, retraction_patch(), requester=requester, **options)


def pointer_token(key: str) -> str:
    """``key`` escaped as one JSON Pointer token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def replication_patch(
    assets: Mapping[str, Mapping[str, Mapping[str, Any]]],
) -> list[dict[str, Any]]:
    """``add`` operations for ``{asset key: {alternate name: asset}}``, one per replica.

    Each lands at ``/assets/<key>/alternate/<name>``, the shape of the alternate-assets
    extension and of ESGF's ``replicate`` validator. As RFC 6902 wants, the asset's
    ``alternate`` object must already exist (items from the generator carry an empty one).
    """
    ops: list[dict[str, Any]] = []
    for key, alternates in assets.items():
        for name, asset in alternates.items():
            if not isinstance(asset.get("href"), str):
                raise InvalidInput(f"replica {name!r} of asset {key!r} has no href")
            value = {"alternate:name": name, **asset}
            path = f"/assets/{pointer_token(key)}/alternate/{pointer_token(name)}"
            ops.append({"op": "add", "path": path, "value": value})
    if not ops:
        raise InvalidInput("a replication names at least one replica of one asset")
    return ops


def replication_event(
    collection_id: str,
    item_id: str,
    assets: Mapping[str, Mapping[str, Mapping[str, Any]]],
    *,
    requester: Requester | Mapping[str, str],
    **options: Unpack[EventOptions],
) -> Event:
    """Announce replicas: ``assets`` maps an asset key to ``{alternate name: asset}``."""
    return patch_event(
        collection_id, item_id, replication_patch(assets), requester=requester, **options
    )


def error_event(
    original: bytes | bytearray | str | Mapping[str, Any],
    *,
    status: int,
    title: str,
    detail: str,
    type: str = "about:blank",
) -> dict[str, Any]:
    """What goes to the error topic: the original event and an RFC 9457 problem.

    The result is the original event with ``error`` added (esgf-core-utils'
    ``KafkaErrorEvent``); ``instance`` is ``<request_id>:<event_id>``. A create's payload
    also gets ``item_id``, which newer ESGF error events require. An original that is not
    a JSON object is carried as text under ``original``.
    """
    if not 400 <= status <= 599:
        raise InvalidInput(f"an error event's status is 4xx or 5xx, not {status}")
    if isinstance(original, Mapping):
        decoded: Any = copy.deepcopy(dict(original))
    else:
        text = original if isinstance(original, str) else bytes(original).decode("utf-8", "replace")
        try:
            decoded = json.loads(text)
        except (ValueError, RecursionError):
            decoded = text
    body: dict[str, Any] = decoded if isinstance(decoded, dict) else {"original": decoded}
    meta = body.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    request_id = meta.get("request_id")
    event_id = meta.get("event_id")
    instance = (
        f"{request_id if isinstance(request_id, str) and request_id else 'unknown'}:"
        f"{event_id if isinstance(event_id, str) and event_id else 'unknown'}"
    )
    data = body.get("data")
    payload = data.get("payload") if isinstance(data, dict) else None
    if isinstance(payload, dict) and "item_id" not in payload:
        item = payload.get("item")
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            payload["item_id"] = item["id"]
    body["error"] = {
        "type": type,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    return body
