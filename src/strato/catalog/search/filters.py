"""Item filters: CQL2 JSON, the query extension, free text, bbox, datetime.

Each compiles to a :class:`~strato.catalog.search.where.Where`. Conditions on the item's own
columns (id, collection, datetime, version, latest...) are SQL on ``catalog_items``.
Facet properties (``cmip6:*``, ``cordex:*``, ``project``) live in ``catalog_facets``, one
row per value, so a test on one is a set of items, "those with a row of this name whose
value passes", which the (name, value, item_pk) index answers and which makes a
list-valued property match when any of its elements does. Facet values are text, so
``<``, ``between`` and ``like`` on them compare text, as the values are written.

``datetime`` means the item's time extent, as pgstac has it: its ``datetime``, or its
``start_datetime`` (for comparisons and sorting) and the range up to ``end_datetime``
(for the temporal operators and the ``datetime`` parameter) when it has a range.

Spatial conditions compare envelopes: the item's ``bbox`` with the envelope of the
geometry or bbox literal, a bbox whose west is east of its east crossing the antimeridian.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    false,
    func,
    not_,
    true,
)

from strato.catalog.model.cql2_limits import FilterLimits, check_json
from strato.catalog.search.cql2_literals import (
    Condition,
    Kind,
    arity,
    cmp,
    item_member,
    like,
    literal_kind,
    number_text,
)
from strato.catalog.search.extents import (
    date_literal,
    date_or_none,
    envelopes,
    envelopes_intersect,
    interval,
    show,
    timestamp,
)
from strato.catalog.search.where import Leaf, SqlBuilder, ValueTest, Where, any_of, negation
from strato.catalog.store import ItemRow, parse_datetime, words
from strato.db import Dialect
from strato.db.dialects.base import JsonKind
from strato.errors import InvalidInput


@dataclass(frozen=True)
class Field:
    """A queryable that is a column of ``catalog_items``."""

    name: str
    column: ColumnElement[Any]
    kind: Kind
    title: str


FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field("id", ItemRow.id.expression, "string", "Item ID"),
        Field("collection", ItemRow.collection_id.expression, "string", "Collection ID"),
        Field(
            "datetime",
            ItemRow.time_start.expression,
            "timestamp",
            "Date and time (start of a range)",
        ),
        Field(
            "start_datetime", ItemRow.start_datetime.expression, "timestamp", "Start date and time"
        ),
        Field("end_datetime", ItemRow.end_datetime.expression, "timestamp", "End date and time"),
        Field("version", ItemRow.version.expression, "string", "Dataset version"),
        Field("base_id", ItemRow.base_id.expression, "string", "Dataset ID without its version"),
        Field("latest", ItemRow.latest.expression, "boolean", "Latest version of its dataset"),
        Field("retracted", ItemRow.retracted.expression, "boolean", "Retracted by its publisher"),
    )
}
GEOMETRY = "geometry"

# Where the temporal operators find an item's extent, by the property they name.
_EXTENTS: dict[str, tuple[ColumnElement[Any], ColumnElement[Any]]] = {
    "datetime": (ItemRow.time_start.expression, ItemRow.time_end.expression),
    "start_datetime": (ItemRow.start_datetime.expression, ItemRow.start_datetime.expression),
    "end_datetime": (ItemRow.end_datetime.expression, ItemRow.end_datetime.expression),
}

_COMPARISONS = {"=", "<>", "<", "<=", ">", ">="}
_FLIPPED = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_QUERY_OPS = {"eq": "=", "neq": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_TEMPORAL = {"t_intersects", "t_before", "t_after", "t_disjoint"}
_UNSUPPORTED = {
    "accenti": "accent-insensitive comparison (accenti) is not supported",
    "s_contains": "of the spatial operators only s_intersects and s_disjoint are supported",
    "s_within": "of the spatial operators only s_intersects and s_disjoint are supported",
    "s_crosses": "of the spatial operators only s_intersects and s_disjoint are supported",
    "s_overlaps": "of the spatial operators only s_intersects and s_disjoint are supported",
    "s_touches": "of the spatial operators only s_intersects and s_disjoint are supported",
    "s_equals": "of the spatial operators only s_intersects and s_disjoint are supported",
    "a_equals": "of the array operators only a_contains and a_overlaps are supported",
    "a_containedBy": "of the array operators only a_contains and a_overlaps are supported",
}
_ARITHMETIC = {"+", "-", "*", "/", "%", "^", "div"}

# A property that is neither a column nor a facet is read from each item's JSON (a scan).
# Its name goes into the dialects' JSON paths, which would read quotes, commas or braces
# as syntax: such names are refused.
PROPERTY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_:.\-]{0,127}")


@dataclass(frozen=True)
class _Prop:
    name: str
    casei: bool = False


class FilterCompiler:
    """Turns filters into conditions on ``catalog_items``.

    ``is_facet`` says whether a facet property is known to this node; ``known`` names a
    few queryables for the message about an unknown one. ``dialect`` is the engine's,
    for what it writes its own way (a LIKE that counts case, JSON types). A filter beyond
    ``limits`` is refused before any of it is compiled.
    """

    def __init__(
        self,
        is_facet: Callable[[str], bool],
        known: Callable[[], Sequence[str]],
        dialect: Dialect,
        sql: SqlBuilder,
        *,
        limits: FilterLimits | None = None,
    ) -> None:
        self.is_facet = is_facet
        self.known = known
        self.dialect = dialect
        self.sql = sql
        self.limits = limits or FilterLimits()

    # --- CQL2 JSON ---

    def cql2(self, node: Any) -> Where:
        """What a CQL2 JSON boolean expression matches, within the filter limits."""
        check_json(node, self.limits)
        return self._expr(node)

    def _expr(self, node: Any) -> Where:
        if isinstance(node, bool):
            return Where.of(true() if node else false())
        if not isinstance(node, Mapping) or "op" not in node:
            raise InvalidInput(
                f"filter: expected a CQL2 expression {{'op': ..., 'args': [...]}}, not {show(node)}"
            )
        op = node["op"]
        args = node.get("args", [])
        if not isinstance(op, str):
            raise InvalidInput(f"filter: 'op' must be a string, not {show(op)}")
        if not isinstance(args, list):
            raise InvalidInput(f"filter: the args of '{op}' must be a list, not {show(args)}")
        if op in ("and", "or"):
            if len(args) < 2:
                raise InvalidInput(f"filter: '{op}' takes at least 2 arguments")
            parts = [self._expr(a) for a in args]
            return Where.all(parts) if op == "and" else any_of(parts, self.sql)
        if op == "not":
            arity(op, args, 1)
            return negation(self._expr(args[0]), self.sql)
        if op in _COMPARISONS:
            arity(op, args, 2)
            return self._compare(op, args[0], args[1])
        if op == "like":
            arity(op, args, 2)
            return self._like(args[0], args[1])
        if op == "between":
            if len(args) == 2 and isinstance(args[1], list) and len(args[1]) == 2:
                # The drafts' form, [property, [low, high]], which clients still send.
                args = [args[0], *args[1]]
            arity(op, args, 3)
            return self._between(args[0], args[1], args[2])
        if op == "in":
            arity(op, args, 2)
            return self._in(op, args[0], args[1])
        if op == "isNull":
            arity(op, args, 1)
            return self._is_null(args[0])
        if op in ("s_intersects", "s_disjoint"):
            arity(op, args, 2)
            hit = self._s_intersects(op, args[0], args[1])
            return Where.of(hit if op == "s_intersects" else not_(hit))
        if op in _TEMPORAL:
            arity(op, args, 2)
            return Where.of(self._temporal(op, args[0], args[1]))
        if op in ("a_contains", "a_overlaps"):
            arity(op, args, 2)
            return self._array(op, args[0], args[1])
        if op in _UNSUPPORTED:
            raise InvalidInput(f"filter: {_UNSUPPORTED[op]}")
        if op in _ARITHMETIC:
            raise InvalidInput(f"filter: arithmetic ('{op}') is not supported")
        raise InvalidInput(f"filter: unknown operator '{op}'")

    def _prop(self, node: Any) -> _Prop | None:
        """The property ``node`` refers to, or None when it is a literal."""
        if isinstance(node, Mapping):
            if node.get("op") == "casei":
                args = node.get("args")
                if not isinstance(args, list) or len(args) != 1:
                    raise InvalidInput("filter: 'casei' takes 1 argument")
                inner = self._prop(args[0])
                return None if inner is None else _Prop(inner.name, casei=True)
            if "property" in node:
                name = node["property"]
                if not isinstance(name, str):
                    raise InvalidInput(f"filter: a property name must be a string: {show(node)}")
                return _Prop(self._resolve(name))
        return None

    def _resolve(self, name: str) -> str:
        bare = name.removeprefix("properties.")
        if bare in FIELDS or bare == GEOMETRY or self.is_facet(bare):
            return bare
        if PROPERTY_NAME.fullmatch(bare):
            return bare  # any other property, read from the items (absent: null)
        raise InvalidInput(
            f"unknown queryable {show(name)}: a property name has 1 to 128 letters, digits "
            f"or '_:.-'; known ones include {', '.join(self.known())}"
        )

    def _literal(self, op: str, node: Any) -> Any:
        """A literal operand as a Python value; casei strings come back lower-cased."""
        if isinstance(node, Mapping):
            if node.get("op") == "casei":
                args = node.get("args")
                if isinstance(args, list) and len(args) == 1 and isinstance(args[0], str):
                    return args[0].lower()
                raise InvalidInput(f"filter: '{op}': casei takes a property or a string")
            if "timestamp" in node:
                return timestamp(op, node["timestamp"])
            if "date" in node:
                return date_literal(op, node["date"])
            if "op" in node:
                raise InvalidInput(
                    f"filter: '{op}' takes a property and a value, not the expression "
                    f"'{node['op']}'"
                )
        return node

    def _operands(self, op: str, a: Any, b: Any) -> tuple[_Prop, Any, bool]:
        """``(property, literal, flipped)`` of a binary operator, in either order."""
        pa, pb = self._prop(a), self._prop(b)
        if pa is not None and pb is None:
            return pa, self._literal(op, b), False
        if pb is not None and pa is None:
            return pb, self._literal(op, a), True
        if pa is None:
            raise InvalidInput(f"filter: '{op}' needs a property on one side")
        raise InvalidInput(f"filter: '{op}' between two properties is not supported")

    def _compare(self, op: str, a: Any, b: Any) -> Where:
        prop, value, flipped = self._operands(op, a, b)
        if flipped:
            op = _FLIPPED[op]

        def make(kind: Kind) -> ValueTest:
            literal = self._coerce(op, prop, kind, value)
            return lambda expr: cmp(op, expr, literal)

        return self._on(prop, op, make, [value] if op == "=" else None, [value])

    def _between(self, a: Any, lo: Any, hi: Any) -> Where:
        prop = self._prop(a)
        if prop is None:
            raise InvalidInput("filter: 'between' needs a property first")
        low, high = self._literal("between", lo), self._literal("between", hi)

        def make(kind: Kind) -> ValueTest:
            bounds = (
                self._coerce("between", prop, kind, low),
                self._coerce("between", prop, kind, high),
            )
            return lambda expr: expr.between(*bounds)

        return self._on(prop, "between", make, literals=[low, high])

    def _in(self, op: str, a: Any, b: Any) -> Where:
        prop = self._prop(a)
        if prop is None or not isinstance(b, list):
            raise InvalidInput(f"filter: '{op}' takes a property and a list of values")
        values = [self._literal(op, v) for v in b]
        if not values:
            return Where.of(false())

        def make(kind: Kind) -> ValueTest:
            literals = [self._coerce(op, prop, kind, v) for v in values]
            return lambda expr: expr.in_(literals)

        return self._on(prop, op, make, values, values)

    def _array(self, op: str, a: Any, b: Any) -> Where:
        prop = self._prop(a)
        if prop is None or not isinstance(b, list) or not self.is_facet(prop.name):
            raise InvalidInput(f"filter: '{op}' takes a facet property and a list of values")
        if op == "a_overlaps":
            return self._in(op, a, b)
        return Where.all([self._compare("=", a, v) for v in b])

    def _like(self, a: Any, b: Any) -> Where:
        prop, pattern, _ = self._operands("like", a, b)
        if not isinstance(pattern, str):
            raise InvalidInput(f"filter: 'like' needs a string pattern, not {show(pattern)}")

        def make(kind: Kind) -> ValueTest:
            if kind != "string":
                raise InvalidInput(f"filter: 'like' needs a text property; {prop.name} is {kind}")
            return lambda expr: like(expr, pattern, casei=prop.casei, dialect=self.dialect)

        return self._on(prop, "like", make, literals=[pattern])

    def _is_null(self, a: Any) -> Where:
        prop = self._prop(a)
        if prop is None or prop.name == GEOMETRY:
            raise InvalidInput("filter: 'isNull' takes a property")
        if prop.name in FIELDS:
            return Where.of(FIELDS[prop.name].column.is_(None))
        if not self.is_facet(prop.name):
            return Where.of(item_member(prop.name).as_string().is_(None))
        return Where(excluded=[(Leaf(prop.name),)])

    def _on(
        self,
        prop: _Prop,
        op: str,
        make: Callable[[Kind], ValueTest],
        equal_to: Sequence[Any] | None = None,
        literals: Sequence[Any] = (),
    ) -> Where:
        """A test on a property: on its column, or on any of its facet values.

        ``make`` checks the operands against the property's type and returns the test;
        ``equal_to`` are the values an equality accepts, which facet sets have sizes for.
        """
        if prop.name == GEOMETRY:
            raise InvalidInput(f"filter: '{op}' does not apply to geometry; use s_intersects")
        if prop.name in FIELDS:
            field = FIELDS[prop.name]
            expr = field.column
            if prop.casei:
                if field.kind != "string":
                    raise InvalidInput(f"filter: casei needs a text property; {field.name} is not")
                expr = func.lower(expr)
            return Where.of(make(field.kind)(expr))
        if not self.is_facet(prop.name):
            return Where.of(self._in_json(prop, make, literals))
        test = make("string")
        if prop.casei:
            return Where(sets=[(Leaf(prop.name, lambda value: test(func.lower(value))),)])
        values = None
        if equal_to is not None:
            values = tuple(self._coerce(op, prop, "string", v) for v in equal_to)
        return Where(sets=[(Leaf(prop.name, test, values),)])

    def _in_json(
        self, prop: _Prop, make: Callable[[Kind], ValueTest], literals: Sequence[Any]
    ) -> Condition:
        """A test on a property read from each item's JSON, in the type of the literals:
        numbers and booleans only where the item's value has that JSON type (so no
        database casts text), anything else as text."""
        kinds = {literal_kind(v) for v in literals}
        kind: Kind = kinds.pop() if len(kinds) == 1 else "string"
        member = item_member(prop.name)
        if kind == "string":
            text = member.as_string()
            return make("string")(func.lower(text) if prop.casei else text)
        if prop.casei:
            raise InvalidInput(f"filter: casei needs text; {prop.name} is compared as {kind}")
        # literal_kind() gives no timestamps: what is not a number here is a boolean.
        json_kind: JsonKind = "number" if kind == "number" else "boolean"
        path = ("properties", prop.name)
        typed = self.dialect.json_is(json_kind, ItemRow.content, path, member)
        value = member.as_float() if kind == "number" else member.as_boolean()
        return make(kind)(case((typed, value), else_=None))

    def _coerce(self, op: str, prop: _Prop, kind: Kind, value: Any) -> Any:
        """``value`` as the type ``prop`` is compared in, or InvalidInput naming ``op``."""
        if kind == "number":
            if isinstance(value, int | float) and not isinstance(value, bool):
                return value
            raise InvalidInput(f"filter: '{op}' compares {prop.name}, a number, with {show(value)}")
        if kind == "timestamp":
            if isinstance(value, datetime):
                return value
            if isinstance(value, str):
                parsed = parse_datetime(value) or date_or_none(value)
                if parsed is not None:
                    return parsed
            raise InvalidInput(
                f"filter: '{op}' compares {prop.name}, a timestamp, with {show(value)}"
            )
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if value in ("true", "false"):
                return value == "true"
            raise InvalidInput(
                f"filter: '{op}' compares {prop.name}, a boolean, with {show(value)}"
            )
        if prop.name not in FIELDS and not isinstance(value, str):
            # Facet values are the text facet_values() wrote: the same text for a number.
            text = number_text(value)
            if text is not None:
                return text
        if not isinstance(value, str):
            raise InvalidInput(f"filter: '{op}' compares {prop.name}, a string, with {show(value)}")
        return value.lower() if prop.casei else value

    def _s_intersects(self, op: str, a: Any, b: Any) -> Condition:
        pa, pb = self._prop(a), self._prop(b)
        prop, geometry = (pa, b) if pa is not None else (pb, a)
        if prop is None or prop.name != GEOMETRY or self._prop(geometry) is not None:
            raise InvalidInput(f"filter: '{op}' takes the property geometry and a geometry")
        return envelopes_intersect(envelopes(op, geometry))

    def _temporal(self, op: str, a: Any, b: Any) -> Condition:
        item, other = self._extent(a), self._extent(b)
        if item is None and other is not None:
            a, b = b, a
            item, other = other, item
            op = {"t_before": "t_after", "t_after": "t_before"}.get(op, op)
        if item is None or other is not None:
            raise InvalidInput(f"filter: '{op}' takes a time property and a time literal")
        lit = interval(op, b)
        start, end = item
        if op in ("t_intersects", "t_disjoint"):
            hit = and_(
                true() if lit.end is None else start <= lit.end,
                true() if lit.start is None else end >= lit.start,
            )
            return hit if op == "t_intersects" else not_(hit)
        if op == "t_before":
            return false() if lit.start is None else end < lit.start
        return false() if lit.end is None else start > lit.end

    def _extent(self, node: Any) -> tuple[ColumnElement[Any], ColumnElement[Any]] | None:
        if isinstance(node, Mapping) and isinstance(node.get("interval"), list):
            bounds = [self._prop(p) for p in node["interval"]]
            if all(b is not None and b.name in _EXTENTS for b in bounds) and len(bounds) == 2:
                first, last = bounds
                assert first is not None
                assert last is not None
                return _EXTENTS[first.name][0], _EXTENTS[last.name][1]
            return None
        prop = self._prop(node)
        if prop is None:
            return None
        if prop.name not in _EXTENTS:
            raise InvalidInput(
                f"filter: the temporal operators apply to {', '.join(_EXTENTS)}, not {prop.name}"
            )
        return _EXTENTS[prop.name]

    # --- the query extension ---

    def query(self, query: Mapping[str, Any]) -> Where:
        """What a STAC query extension object matches, each operator AND'ed."""
        if not isinstance(query, Mapping):
            raise InvalidInput("query: expected an object of {property: {operator: value}}")
        check_json(query, self.limits)
        parts: list[Where] = []
        for name, ops in query.items():
            if not isinstance(ops, Mapping) or not ops:
                raise InvalidInput(f"query: {name!r} needs an object of {{operator: value}}")
            prop = {"property": name}
            for op, value in ops.items():
                parts.append(self.cql2(_query_node(name, op, value, prop)))
        return Where.all(parts)

    def free_text(self, terms: Iterable[str]) -> Where:
        """Items matching any of ``terms``; a term of several words needs them all.

        Words are matched whole and without regard to case, in the item's id, title,
        description, keywords and facet values
        (see :class:`~strato.catalog.search.where.WordIndex`).
        """
        single: set[str] = set()
        phrases: list[Where] = []
        for term in terms:
            found = sorted(set(words(term)))
            if not found:
                raise InvalidInput(
                    f"q: {term!r} has no word to search for (letters or digits, not a stopword)"
                )
            if len(found) == 1:
                single.add(found[0])
            else:
                phrases.append(Where(sets=[self.sql.words.facet_set([w]) for w in found]))
        if single:
            phrases.insert(0, Where(sets=[self.sql.words.facet_set(sorted(single))]))
        if len(phrases) == 1:
            return phrases[0]
        return any_of(phrases, self.sql) if phrases else Where()


def _query_node(name: str, op: str, value: Any, prop: dict[str, str]) -> dict[str, Any]:
    if op in _QUERY_OPS:
        return {"op": _QUERY_OPS[op], "args": [prop, value]}
    if op == "in":
        if not isinstance(value, list):
            raise InvalidInput(f"query: {name!r} 'in' needs a list of values")
        return {"op": "in", "args": [prop, value]}
    if op in ("startsWith", "endsWith", "contains"):
        if not isinstance(value, str):
            raise InvalidInput(f"query: {name!r} '{op}' needs a string, not {show(value)}")
        text = re.sub(r"([\\%_])", r"\\\1", value)
        pattern = {"startsWith": f"{text}%", "endsWith": f"%{text}", "contains": f"%{text}%"}
        return {"op": "like", "args": [prop, pattern[op]]}
    raise InvalidInput(
        f"query: unknown operator {op!r} for {name!r}; use one of "
        f"{', '.join([*_QUERY_OPS, 'in', 'startsWith', 'endsWith', 'contains'])}"
    )
