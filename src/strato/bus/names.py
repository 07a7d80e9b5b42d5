"""Names every backend accepts: topics, consumer groups, keys and topic patterns.

One rule for all three backends, so that an event stream can move from the embedded
bus to NATS or Kafka without renaming anything: a topic is dot-separated tokens of
letters, digits, ``-`` and ``_`` (a NATS subject without wildcards, a legal Kafka topic).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from strato.bus.base import encode
from strato.errors import InvalidInput

# Kafka's limit; NATS subjects allow more, the embedded log has none.
MAX_NAME = 249
MAX_KEY = 1024

_PART = r"[A-Za-z0-9_-]+"
_NAME = re.compile(rf"{_PART}(?:\.{_PART})*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_topic(topic: object) -> str:
    return _validate_name(topic, "topic")


def validate_group(group: object) -> str:
    return _validate_name(group, "consumer group")


def _validate_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{what} name must be a non-empty string, got {name!r}")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"{what} name {name[:40]!r}... is longer than {MAX_NAME} characters")
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"{what} name {name!r} is not valid: use letters, digits, '-', '_' and '.' "
            "between non-empty parts (like CMIP6.historical.MIROC6)"
        )
    return name


def validate_key(key: object) -> str:
    # Keys travel in a NATS header, where a line break would end the header block.
    if not isinstance(key, str):
        raise InvalidInput(f"event key must be a string, got {type(key).__name__}")
    if len(key) > MAX_KEY:
        raise InvalidInput(f"event key is longer than {MAX_KEY} characters")
    if _CONTROL.search(key):
        raise InvalidInput(f"event key {key[:40]!r} contains control characters")
    return key


def encode_event(event: Mapping[str, Any] | bytes) -> bytes:
    """The event as JSON bytes (bytes pass as they are); what JSON cannot hold is invalid."""
    try:
        return encode(event)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"event cannot be encoded as JSON: {exc}") from None


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The topic pattern as a regular expression that must match the whole topic name."""
    if not isinstance(pattern, str) or not pattern:
        raise InvalidInput("topic pattern must be a non-empty regular expression")
    try:
        return re.compile(rf"(?:{pattern})\Z")
    except re.error as exc:
        raise InvalidInput(
            f"topic pattern {pattern!r} is not a regular expression: {exc}"
        ) from None


def validate_subscription(
    topics: Sequence[str], pattern: str | None
) -> tuple[tuple[str, ...], re.Pattern[str] | None]:
    """Exactly one of a topic list and a pattern; both checked."""
    if isinstance(topics, str):
        raise InvalidInput("topics must be a list of topic names, not one string")
    if pattern is not None and topics:
        raise InvalidInput("subscribe to a list of topics or to a pattern, not both")
    if pattern is None and not topics:
        raise InvalidInput("subscribe needs topics or a pattern")
    if pattern is not None:
        return (), compile_pattern(pattern)
    names = tuple(dict.fromkeys(validate_topic(t) for t in topics))
    return names, None
