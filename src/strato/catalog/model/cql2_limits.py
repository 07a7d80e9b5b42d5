"""Bounds on CQL2 filters, checked before anything parses or compiles them.

The ``cql2`` package parses CQL2 text in native code that recurses once per level of
nesting and per operator of a chain: about 2,000 nested parentheses, 1,200 nested
``NOT (`` or a few thousand chained operators overflow its stack and the whole server
process dies (SIGSEGV), where no Python ``except`` can help. The text is therefore
scanned here first, in Python, and refused beyond :class:`FilterLimits`. The scan
over-estimates (it counts every operator between two ``AND``/``OR``/commas as a level,
where the parser nests fewer), so any text it lets through nests less than it says.

CQL2 JSON never reaches native code, but a filter of 10,000 arguments or a LIKE pattern
of 100 KB makes SQL that takes tens of seconds or that the database refuses; the decoded
JSON is walked here, without recursion, and refused beyond the same limits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strato.errors import InvalidInput

if TYPE_CHECKING:
    from strato.catalog.settings import CatalogSettings

# What the scan of CQL2 text looks at; everything else (names, numbers) is skipped.
# A string literal is "'" to the next "'": the grammar of the cql2 parser has no escape
# inside one ('' is an empty string next to the first), so the scan and the parser see
# the same strings. Keywords are whole words, in any case.
_TEXT_TOKENS = re.compile(
    r"""
      (?P<string>'[^']*')
    | (?P<open>\()
    | (?P<close>\))
    | (?P<sep>,|\b(?:and|or)\b)
    | (?P<op><>|!=|<=|>=|\|\||[-+*/%^=<>]|\b(?:not|div|like|in|is|between)\b)
    """,
    re.IGNORECASE | re.VERBOSE,
)


@dataclass(frozen=True)
class FilterLimits:
    """How large a filter may be; see ``catalog.filter_max_*`` in the settings.

    ``length``: characters of the filter as sent (CQL2 text, or CQL2 JSON text in a
    query string). ``depth``: levels of nesting (a JSON object or array; in text a
    parenthesis or an operator). ``nodes``: JSON values (objects, arrays, scalars), or
    operators and parentheses in text. ``args``: arguments of one operator, values of one
    list. ``literal``: characters of one string (a LIKE pattern, an id...).
    """

    length: int = 65_536
    depth: int = 64
    nodes: int = 1_000
    args: int = 500
    literal: int = 1_024


def check_text(text: str, limits: FilterLimits) -> None:
    """Refuse CQL2 text beyond ``limits`` (InvalidInput naming the limit), in one scan."""
    if len(text) > limits.length:
        raise InvalidInput(
            f"filter: the CQL2 text has {len(text):,} characters; at most "
            f"{limits.length:,} are accepted"
        )
    # One frame per open parenthesis: how many operators nest in it since the last
    # AND/OR/comma (siblings, which the parser does not nest) plus one for the group.
    frames = [0]
    depth = deepest = 1
    nodes = 0
    for match in _TEXT_TOKENS.finditer(text):
        kind = match.lastgroup
        if kind == "string":
            if len(match.group()) - 2 > limits.literal:
                raise _literal_error(len(match.group()) - 2, limits)
            continue
        if kind == "sep":
            depth -= frames[-1]
            frames[-1] = 0
            if match.group() != ",":
                nodes += 1
            continue
        nodes += 1
        if kind == "open":
            frames.append(0)
            depth += 1
        elif kind == "close":
            if len(frames) > 1:
                depth -= frames.pop() + 1
        else:
            frames[-1] += 1
            depth += 1
        if depth > deepest:
            deepest = depth
            if deepest > limits.depth:
                raise _depth_error(limits)
        if nodes > limits.nodes:
            raise _nodes_error(limits)


def check_json(node: Any, limits: FilterLimits) -> None:
    """Refuse decoded CQL2 JSON beyond ``limits``: a walk with a stack of its own, so
    no nesting can exhaust Python's."""
    stack: list[tuple[Any, int]] = [(node, 1)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > limits.nodes:
            raise _nodes_error(limits)
        if isinstance(value, str):
            if len(value) > limits.literal:
                raise _literal_error(len(value), limits)
            continue
        if isinstance(value, Mapping):
            children: Any = value.values()
        elif isinstance(value, list | tuple):
            children = value
            if len(value) > limits.args:
                raise InvalidInput(
                    f"filter: an operator or list has {len(value):,} arguments; at most "
                    f"{limits.args:,} are accepted"
                )
        else:
            continue
        if depth >= limits.depth and len(children):
            raise _depth_error(limits)
        stack.extend((child, depth + 1) for child in children)


def _depth_error(limits: FilterLimits) -> InvalidInput:
    return InvalidInput(f"filter: nested deeper than {limits.depth} levels, the most accepted")


def _nodes_error(limits: FilterLimits) -> InvalidInput:
    return InvalidInput(
        f"filter: more than {limits.nodes:,} operators and values, the most accepted"
    )


def _literal_error(size: int, limits: FilterLimits) -> InvalidInput:
    return InvalidInput(
        f"filter: a string of {size:,} characters; at most {limits.literal:,} are accepted "
        "(a LIKE pattern or any other literal)"
    )


def filter_limits(catalog: CatalogSettings) -> FilterLimits:
    """The limits ``catalog.filter_max_*`` set."""
    return FilterLimits(
        length=catalog.filter_max_length,
        depth=catalog.filter_max_depth,
        nodes=catalog.filter_max_nodes,
        args=catalog.filter_max_args,
        literal=catalog.filter_max_literal,
    )
