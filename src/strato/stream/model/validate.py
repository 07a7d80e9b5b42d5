"""What clients send, checked: each refusal names the field and the value."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from strato.stream.dataserver.base import Address
from strato.stream.model.errors import InvalidRequest, InvalidUid

ROLES = ("PROD", "CONS")
# SciStream's clients send uuid1 strings; anything printable and short is accepted.
_UID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def uid(value: str) -> str:
    if not _UID.match(value):
        shown = value[:40] + ("..." if len(value) > 40 else "")
        raise InvalidUid(
            f"uid {shown!r} is not valid: 1 to 128 letters, digits or ._:@- "
            "starting with a letter or digit"
        )
    return value


def role(value: str, *, field: str = "role") -> str:
    upper = value.strip().upper()
    if upper not in ROLES:
        raise InvalidRequest(f"{field} {value[:20]!r} is not valid: PROD or CONS")
    return upper


def num_conn(value: int, limit: int) -> int:
    if not 1 <= value <= limit:
        raise InvalidRequest(f"num_conn {value} is not valid: from 1 to {limit}")
    return value


def rate(value: int) -> int:
    if value < 0:
        raise InvalidRequest(f"rate {value} is not valid: 0 or more")
    return value


def address(value: str, *, field: str) -> Address:
    """``ip:port``, ``[v6]:port`` or ``hostname:port``."""
    text = value.strip()
    host, sep, port_text = text.rpartition(":")
    bad = InvalidRequest(
        f"{field} {value[:80]!r} is not an address: expected ip:port, [ipv6]:port or "
        "hostname:port with a port from 1 to 65535"
    )
    if not sep or not host or not port_text.isdigit() or len(port_text) > 5:
        raise bad
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise bad
    if host.startswith("[") and host.endswith("]"):
        try:
            host = str(ipaddress.IPv6Address(host[1:-1]))
        except ValueError:
            raise bad from None
        return Address(host, port)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.match(host) or host.replace(".", "").isdigit():
            raise bad from None
        return Address(host, port)
    if ip.version == 6:  # a bare v6 host is ambiguous with its port: brackets required
        raise bad
    return Address(str(ip), port)


def addresses(values: Iterable[str], *, field: str, limit: int) -> tuple[Address, ...]:
    items = list(values)
    if len(items) > limit:
        raise InvalidRequest(f"{field}: {len(items)} addresses, at most {limit}")
    return tuple(address(v, field=f"{field}[{i}]") for i, v in enumerate(items))


def format_address(a: Address) -> str:
    return f"[{a.host}]:{a.port}" if ":" in a.host else f"{a.host}:{a.port}"
