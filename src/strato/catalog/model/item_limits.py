"""How large an item may be, wherever one arrives: a transaction, an event off the bus.

Without a bound a 50 MB item was accepted and applied, after which every search page
that held it weighed 50 MB. The size of an item is the size of its JSON, compact, as it
is stored and served. A transaction with a larger item (or patch) answers 413; a larger
event, from any publisher, goes to the error topic with the reason and is never applied;
a patch that would make an item larger is rejected the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from strato import jsonio
from strato.catalog.model.events import Event
from strato.errors import PayloadTooLarge

# Room for an event's envelope (metadata, publisher, auth) around its item: a message
# larger than the item limit and this is refused before it is even decoded.
ENVELOPE_BYTES = 64 * 1024
TITLE = "item-too-large"


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON."""
    return len(jsonio.dump_bytes(value))


def too_large(what: str, size: int, limit: int) -> str:
    return (
        f"{what} is {size:,} bytes of JSON, larger than {limit:,} bytes, the most this node "
        "accepts (setting catalog.max_item_bytes)"
    )


def check_events(events: Sequence[Event], limit: int) -> None:
    """Refuse a write whose item (or patch) is larger than ``limit`` (PayloadTooLarge,
    naming the item of a FeatureCollection by its place)."""
    for index, event in enumerate(events):
        doc = event.patch if event.kind == "patch" else event.item
        size = json_size(doc)
        if size > limit:
            what = "the patch" if event.kind == "patch" else "the item"
            field = f"features[{index}]" if len(events) > 1 else "$"
            message = too_large(what, size, limit)
            raise PayloadTooLarge(
                f"{field}: {message}" if len(events) > 1 else message,
                errors=[{"field": field, "message": message}],
            )


def oversize_message(raw: bytes, limit: int) -> str | None:
    """Why an event of ``raw`` bytes is refused unread, or None when it may be read."""
    if len(raw) <= limit + ENVELOPE_BYTES:
        return None
    return (
        f"the event is {len(raw):,} bytes, larger than an item of at most {limit:,} bytes "
        f"and its envelope ({ENVELOPE_BYTES:,} bytes) can be (setting catalog.max_item_bytes)"
    )


def without_content(raw: bytes) -> bytes:
    """An oversize event as the error topic carries it: its envelope and ids, the item or
    patch left out (the error topic is no place for what was refused for its size)."""
    try:
        decoded = jsonio.loads(raw)
    except (ValueError, RecursionError):
        return jsonio.dump_bytes({"original": raw[:1024].decode("utf-8", "replace")})
    if not isinstance(decoded, dict):
        return jsonio.dump_bytes({"original": "(not a JSON object)"})
    data = decoded.get("data")
    payload = data.get("payload") if isinstance(data, Mapping) else None
    if isinstance(payload, dict):
        item = payload.pop("item", None)
        if isinstance(item, Mapping) and isinstance(item.get("id"), str):
            payload.setdefault("item_id", item["id"])
        payload.pop("patch", None)
        payload["omitted"] = "the item or patch, for its size"
    return jsonio.dump_bytes(decoded)


def fitting(items: Sequence[Any], budget: int) -> int:
    """How many of ``items``, from the first, fit in ``budget`` bytes of JSON: at least
    one, so a page always moves on, however large its first item."""
    used = 0
    for count, item in enumerate(items):
        used += json_size(item)
        if used > budget and count > 0:
            return count
    return len(items)
