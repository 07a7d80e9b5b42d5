"""Credentials out of everything shown: one masking rule for URLs, messages and logs.

Any URL strato prints, logs or puts in an error message goes through :func:`mask_url`
(or :func:`mask_secrets` for free text that may hold URLs): the password of its
userinfo and the values of query parameters that carry secrets become ``***``,
whatever the scheme (database, bus, broker, peer). The rest of the URL stays as the
user wrote it, so they can still tell which server is meant.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

MASK = "***"

# Query parameter names whose values are secrets (compared in lower case). Names that
# merely contain one of _SECRET_PARTS count too (``sasl_password``, ``api_token``).
SECRET_PARAMS = frozenset(
    {"password", "pass", "passwd", "pwd", "token", "secret", "key", "sslpassword", "auth"}
)
_SECRET_PARTS = ("password", "passwd", "secret", "token", "apikey", "api_key", "access_key")

# Schemes whose userinfo without a colon is itself the secret: NATS reads
# ``nats://TOKEN@host`` as token authentication.
_TOKEN_USERINFO = frozenset({"nats", "tls", "ws", "wss"})

# A URL inside free text: scheme://, then anything up to white space or a quote/bracket.
_URL_IN_TEXT = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*)://([^\s'\"<>()\[\]{}]+)")
# key=value pairs of libpq-style connection strings and similar messages.
_PAIR_IN_TEXT = re.compile(
    r"(?<![\w/?&;])((?:[A-Za-z_]*(?:password|passwd|secret|token)[A-Za-z_]*|pwd))=([^\s&'\",;]+)",
    re.IGNORECASE,
)
_PARAM = re.compile(r"([?&;])([^=&;#]+)=([^&;#]*)")


def secret_param(name: str) -> bool:
    lowered = name.strip().lower()
    return lowered in SECRET_PARAMS or any(part in lowered for part in _SECRET_PARTS)


def mask_url(url: str) -> str:
    """``url`` with the password of its userinfo and its secret query values masked.

    Works on any scheme and on comma-separated host lists (``nats://u:p@a:4222,b:4222``);
    text that is not a URL comes back unchanged.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority_end = len(rest)
    for stop in "/?#":
        found = rest.find(stop)
        if found != -1:
            authority_end = min(authority_end, found)
    authority, tail = rest[:authority_end], rest[authority_end:]
    if "@" in authority:
        userinfo, host = authority.rsplit("@", 1)
        user, colon, _password = userinfo.partition(":")
        if colon:
            userinfo = f"{user}:{MASK}"
        elif scheme.lower() in _TOKEN_USERINFO:
            userinfo = MASK
        authority = f"{userinfo}@{host}"
    if "=" in tail:
        tail = _PARAM.sub(_mask_param, tail)
    return f"{scheme}{sep}{authority}{tail}"


def _mask_param(m: re.Match[str]) -> str:
    sep, name, value = m.group(1), m.group(2), m.group(3)
    return f"{sep}{name}={MASK if value and secret_param(name) else value}"


def mask_secrets(text: str) -> str:
    """Every URL in ``text`` masked as :func:`mask_url` does, and ``password=...``-style
    pairs outside URLs (libpq connection strings) too."""
    if "://" in text:
        text = _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)
    if "=" in text:
        text = _PAIR_IN_TEXT.sub(lambda m: f"{m.group(1)}={MASK}", text)
    return text


def mask_tree(value: Any) -> Any:
    """A copy of JSON-like data (dicts, lists, strings) with every string masked."""
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, Mapping):
        return {k: mask_tree(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [mask_tree(v) for v in value]
    return value
