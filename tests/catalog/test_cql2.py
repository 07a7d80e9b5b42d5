"""CQL2 filters on SQLite, PostgreSQL and MariaDB: every operator against a Python count.

The catalog (and the helpers that say in Python what an item has) are those of
test_search.py; the errors, which do not depend on the engine, are checked on SQLite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from strato.catalog.search.search import SearchRequest, parse_cql2_text
from strato.errors import InvalidInput
from tests.catalog.test_search import (
    Catalog,
    catalog_fixture,  # noqa: F401 - the "catalog" fixture, on each database
    extent,
    facet,
    open_catalog,
    prop,
    utc,
)

Keep = Callable[[dict[str, Any]], bool]


@pytest.fixture(name="sqlite_catalog")
def sqlite_catalog_fixture(tmp_path: Path) -> Iterator[Catalog]:
    yield from open_catalog(f"sqlite:///{tmp_path / 'cql2.db'}")


def P(name: str) -> dict[str, str]:
    return {"property": name}


def op(name: str, *args: Any) -> dict[str, Any]:
    return {"op": name, "args": list(args)}


def ts(text: str) -> dict[str, str]:
    return {"timestamp": text}


def check(catalog: Catalog, cases: list[tuple[Any, Keep]]) -> None:
    for expression, keep in cases:
        try:
            catalog.expect(SearchRequest(filter=expression, limit=50), keep)
        except AssertionError as exc:
            raise AssertionError(f"{expression}: {exc}") from None


def test_comparisons(catalog: Catalog) -> None:
    c1900 = utc("1900-01-01T00:00:00")
    check(
        catalog,
        [
            (
                op("=", P("cmip6:variable_id"), "tas"),
                lambda i: "tas" in facet(i, "cmip6:variable_id"),
            ),
            (
                op("<>", P("cmip6:variable_id"), "tas"),
                lambda i: any(v != "tas" for v in facet(i, "cmip6:variable_id")),
            ),
            (
                op("<", P("cmip6:source_id"), "E"),
                lambda i: any(v < "E" for v in facet(i, "cmip6:source_id")),
            ),
            (op(">=", P("version"), "20200101"), lambda i: str(prop(i, "version")) >= "20200101"),
            # The literal first: the comparison turns around.
            (op(">", "20200101", P("version")), lambda i: str(prop(i, "version")) < "20200101"),
            (
                op("<=", P("datetime"), ts("1900-01-01T00:00:00Z")),
                lambda i: extent(i)[0] <= c1900,
            ),
            (op("=", P("collection"), "CORDEX"), lambda i: i["collection"] == "CORDEX"),
            (op("=", P("id"), "hand.instant"), lambda i: i["id"] == "hand.instant"),
            (op("=", P("latest"), False), lambda i: prop(i, "latest") is False),
            (op("=", P("retracted"), True), lambda i: prop(i, "retracted") is True),
            # Facet values compare as the text they were written as.
            (op("=", P("cmip6:nominal_resolution"), 100), lambda i: i["id"] == "hand.instant"),
            (
                op("=", op("casei", P("cmip6:source_id")), op("casei", "mixedCASE")),
                lambda i: i["id"] == "hand.instant",
            ),
            (
                op("=", P("properties.cmip6:table_id"), "Amon"),
                lambda i: "Amon" in facet(i, "cmip6:table_id"),
            ),
            (True, lambda i: True),
        ],
    )


def test_like_between_in_isnull_not(catalog: Catalog) -> None:
    source = "cmip6:source_id"
    check(
        catalog,
        [
            (
                op("like", P(source), "CNRM%"),
                lambda i: any(v.startswith("CNRM") for v in facet(i, source)),
            ),
            # Case counts, unless casei says otherwise.
            (op("like", P(source), "cnrm%"), lambda i: False),
            (
                op("like", op("casei", P(source)), op("casei", "cnrm%")),
                lambda i: any(v.startswith("CNRM") for v in facet(i, source)),
            ),
            (op("like", P("id"), "hand.instan_"), lambda i: i["id"] == "hand.instant"),
            (op("like", P("id"), "hand[%"), lambda i: False),
            # Escaped metacharacters are themselves: only the value with "50%_" in it.
            (
                op("like", P("cmip6:variable_long_name"), "50\\%\\_done%"),
                lambda i: i["id"] == "hand.dateline",
            ),
            (
                op("like", P("cmip6:variable_long_name"), "50%_%"),
                lambda i: i["id"] == "hand.dateline",
            ),
            (
                op("between", P("version"), "20190101", "20191231"),
                lambda i: "20190101" <= str(prop(i, "version")) <= "20191231",
            ),
            (
                op(
                    "between",
                    P("end_datetime"),
                    ts("2000-01-01T00:00:00Z"),
                    ts("2015-01-01T00:00:00Z"),
                ),
                lambda i: (
                    prop(i, "end_datetime") is not None
                    and "2000-01-01" <= prop(i, "end_datetime") <= "2015-01-01"
                ),
            ),
            (
                op("in", P("cmip6:variable_id"), ["tas", "pr", "nope"]),
                lambda i: bool({"tas", "pr"} & set(facet(i, "cmip6:variable_id"))),
            ),
            (
                op("in", P("id"), ["hand.instant", "hand.nothing"]),
                lambda i: i["id"].startswith("hand.n") or i["id"] == "hand.instant",
            ),
            (op("in", P("id"), []), lambda i: False),
            (op("isNull", P("cmip6:member_id")), lambda i: not facet(i, "cmip6:member_id")),
            (op("isNull", P("end_datetime")), lambda i: prop(i, "end_datetime") is None),
            (
                op("not", op("=", P("cmip6:variable_id"), "tas")),
                lambda i: "tas" not in facet(i, "cmip6:variable_id"),
            ),
            # The legacy search's filter: two facets, one negated.
            (
                op(
                    "and",
                    op("in", P("cmip6:variable_id"), ["tas", "pr"]),
                    op("not", op("=", P("cmip6:member_id"), "r1i1p1f1")),
                ),
                lambda i: (
                    bool({"tas", "pr"} & set(facet(i, "cmip6:variable_id")))
                    and "r1i1p1f1" not in facet(i, "cmip6:member_id")
                ),
            ),
            (
                op("or", op("=", P("collection"), "CORDEX"), op("=", P("retracted"), True)),
                lambda i: i["collection"] == "CORDEX" or prop(i, "retracted") is True,
            ),
            # List values: any element; a_contains wants them all.
            (op("=", P("cmip6:realm"), "seaIce"), lambda i: "seaIce" in facet(i, "cmip6:realm")),
            (
                op("a_contains", P("cmip6:realm"), ["ocean", "seaIce"]),
                lambda i: i["id"] == "hand.instant",
            ),
            (
                op("a_overlaps", P("cmip6:activity_id"), ["ScenarioMIP", "none"]),
                lambda i: "ScenarioMIP" in facet(i, "cmip6:activity_id"),
            ),
        ],
    )


def _box_hit(item: dict[str, Any], west: float, south: float, east: float, north: float) -> bool:
    b = item.get("bbox")
    if not b or b[1] > north or b[3] < south:
        return False
    theirs = [(b[0], 180.0), (-180.0, b[2])] if b[0] > b[2] else [(b[0], b[2])]
    mine = [(west, 180.0), (-180.0, east)] if west > east else [(west, east)]
    return any(a <= d and c <= e for a, e in theirs for c, d in mine)


def test_spatial(catalog: Catalog) -> None:
    polygon = {
        "type": "Polygon",
        "coordinates": [[[12.0, 41.0], [30.0, 41.0], [30.0, 60.0], [12.0, 41.0]]],
    }
    collection = {
        "type": "GeometryCollection",
        "geometries": [{"type": "Point", "coordinates": [-175.0, 0.0]}],
    }
    check(
        catalog,
        [
            (
                op("s_intersects", P("geometry"), {"bbox": [0.0, 30.0, 30.0, 60.0]}),
                lambda i: _box_hit(i, 0.0, 30.0, 30.0, 60.0),
            ),
            (
                op("s_intersects", P("geometry"), polygon),
                lambda i: _box_hit(i, 12.0, 41.0, 30.0, 60.0),
            ),
            (
                op("s_intersects", {"type": "Point", "coordinates": [15.0, 45.0]}, P("geometry")),
                lambda i: _box_hit(i, 15.0, 45.0, 15.0, 45.0),
            ),
            (
                op("s_intersects", P("geometry"), {"bbox": [175.0, -5.0, -178.0, 5.0]}),
                lambda i: _box_hit(i, 175.0, -5.0, -178.0, 5.0),
            ),
            (
                op("s_intersects", P("geometry"), collection),
                lambda i: _box_hit(i, -175.0, 0.0, -175.0, 0.0),
            ),
            (
                op("s_disjoint", P("geometry"), {"bbox": [0.0, 30.0, 30.0, 60.0]}),
                lambda i: bool(i.get("bbox")) and not _box_hit(i, 0.0, 30.0, 30.0, 60.0),
            ),
        ],
    )


def test_temporal(catalog: Catalog) -> None:
    def overlaps(lo: str, hi: str) -> Keep:
        a, b = utc(lo), utc(hi)
        return lambda i: extent(i)[0] <= b and extent(i)[1] >= a

    y2000 = utc("2000-01-01T00:00:00")
    check(
        catalog,
        [
            (
                op("t_intersects", P("datetime"), {"interval": ["1995-01-01", "1995-12-31"]}),
                overlaps("1995-01-01T00:00:00", "1995-12-31T23:59:59.999999"),
            ),
            (
                op("t_intersects", P("datetime"), ts("2001-06-01T00:00:00Z")),
                overlaps("2001-06-01T00:00:00", "2001-06-01T00:00:00"),
            ),
            (
                op("t_intersects", P("datetime"), {"date": "2001-06-01"}),
                overlaps("2001-06-01T00:00:00", "2001-06-01T23:59:59.999999"),
            ),
            (
                op("t_intersects", P("datetime"), {"interval": ["2090-01-01T00:00:00Z", ".."]}),
                lambda i: extent(i)[1] >= utc("2090-01-01T00:00:00"),
            ),
            (
                op("t_before", P("datetime"), ts("2000-01-01T00:00:00Z")),
                lambda i: extent(i)[1] < y2000,
            ),
            (
                op("t_after", P("datetime"), ts("2000-01-01T00:00:00Z")),
                lambda i: extent(i)[0] > y2000,
            ),
            # The literal first: "2000 is after the item" is "the item is before 2000".
            (
                op("t_after", ts("2000-01-01T00:00:00Z"), P("datetime")),
                lambda i: extent(i)[1] < y2000,
            ),
            (
                op("t_disjoint", P("datetime"), {"interval": ["1995-01-01", "1995-12-31"]}),
                lambda i: not overlaps("1995-01-01T00:00:00", "1995-12-31T23:59:59.999999")(i),
            ),
            (
                op(
                    "t_intersects",
                    {"interval": [P("start_datetime"), P("end_datetime")]},
                    {"interval": ["1995-01-01", "1995-12-31"]},
                ),
                lambda i: (
                    prop(i, "start_datetime") is not None
                    and overlaps("1995-01-01T00:00:00", "1995-12-31T23:59:59.999999")(i)
                ),
            ),
        ],
    )


TEXT_AND_JSON = [
    (
        "\"cmip6:variable_id\" IN ('tas', 'pr') AND NOT \"cmip6:member_id\" = 'r1i1p1f1'",
        op(
            "and",
            op("in", P("cmip6:variable_id"), ["tas", "pr"]),
            op("not", op("=", P("cmip6:member_id"), "r1i1p1f1")),
        ),
    ),
    (
        "collection = 'CORDEX' OR (latest = false AND retracted = true)",
        op(
            "or",
            op("=", P("collection"), "CORDEX"),
            op("and", op("=", P("latest"), False), op("=", P("retracted"), True)),
        ),
    ),
    (
        "S_INTERSECTS(geometry, BBOX(0, 30, 30, 60))"
        " AND datetime > TIMESTAMP('1990-01-01T00:00:00Z')",
        op(
            "and",
            op("s_intersects", P("geometry"), {"bbox": [0, 30, 30, 60]}),
            op(">", P("datetime"), ts("1990-01-01T00:00:00Z")),
        ),
    ),
    (
        "id LIKE 'hand.%' AND version BETWEEN '1' AND '2' AND \"cmip6:nominal_resolution\" = 100",
        op(
            "and",
            op("like", P("id"), "hand.%"),
            op("between", P("version"), "1", "2"),
            op("=", P("cmip6:nominal_resolution"), 100),
        ),
    ),
    (
        "T_INTERSECTS(datetime, INTERVAL('1995-01-01', '1995-12-31')) AND end_datetime IS NULL",
        op(
            "and",
            op("t_intersects", P("datetime"), {"interval": ["1995-01-01", "1995-12-31"]}),
            op("isNull", P("end_datetime")),
        ),
    ),
]


def test_text_and_json_find_the_same(catalog: Catalog) -> None:
    for text, expression in TEXT_AND_JSON:
        parsed = parse_cql2_text(text)
        by_text = catalog.ids(SearchRequest(filter=parsed, limit=50))
        by_json = catalog.ids(SearchRequest(filter=expression, limit=50))
        assert sorted(by_text) == sorted(by_json), text
        # A string filter is taken as CQL2 text.
        assert sorted(catalog.ids(SearchRequest(filter=text, limit=50))) == sorted(by_json)
    assert catalog.ids(SearchRequest(filter=parse_cql2_text(TEXT_AND_JSON[3][0]))) == [
        "hand.instant"
    ]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("a = ", "line 1, column 5 (at the end of the text)"),
        ("\"cmip6:variable_id\" == 'tas'", "line 1, column 22"),
        ("x IN ('a'", "line 1, column 10"),
        ("collection = 'CMIP6' AND\nid LIKE", "line 2, column 8"),
        ("foo bar baz", "line 1, column 5 (at 'bar baz')"),
    ],
)
def test_malformed_text_says_where(text: str, where: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_cql2_text(text)
    message = caught.value.detail
    assert where in message
    assert "expected" in message
    assert "Traceback" not in message
    with pytest.raises(InvalidInput, match="empty"):
        parse_cql2_text("  ")


def test_errors_name_the_problem(sqlite_catalog: Catalog) -> None:
    cases: list[tuple[Any, str]] = [
        # Other properties are read from the items; a name their JSON paths cannot take is not.
        (op("=", P("no pe"), "x"), "unknown queryable 'no pe': a property name has"),
        (op("=", P('a"b'), "x"), "known ones include id, collection"),
        (op("=", P("~words"), "x"), "unknown queryable '~words'"),
        (op("=", op("casei", P("size")), 3), "casei needs text; size is compared as number"),
        (op("=", P("latest"), "yes"), "'=' compares latest, a boolean, with 'yes'"),
        (op("<", P("datetime"), "soon"), "'<' compares datetime, a timestamp, with 'soon'"),
        (op("=", P("version"), 3), "'=' compares version, a string, with 3"),
        (op("like", P("version"), 3), "'like' needs a string pattern"),
        (op("like", P("latest"), "t%"), "'like' needs a text property"),
        (op("in", P("id"), "x"), "'in' takes a property and a list"),
        (op("=", P("id")), "'=' takes 2 arguments, not 1"),
        (op("and", op("=", P("id"), "x")), "'and' takes at least 2 arguments"),
        (op("=", "a", "b"), "'=' needs a property on one side"),
        (op("=", P("id"), P("version")), "between two properties is not supported"),
        (op("s_intersects", P("geometry"), {"bbox": [0, 0, 1]}), "bbox"),
        (op("s_intersects", P("geometry"), {"type": "Blob"}), "unknown geometry type 'Blob'"),
        (op("s_intersects", P("id"), {"bbox": [0, 0, 1, 1]}), "takes the property geometry"),
        (op("s_within", P("geometry"), {"bbox": [0, 0, 1, 1]}), "only s_intersects"),
        (op("t_before", P("id"), ts("2000-01-01T00:00:00Z")), "temporal operators apply to"),
        (op("t_before", P("datetime"), ts("yesterday")), "not an RFC 3339 timestamp"),
        (op("t_before", P("datetime"), "2000"), "needs a timestamp, date or interval"),
        (op("=", P("datetime"), {"date": "2000-13-01"}), "is not a date"),
        (op("accenti", P("id")), "accenti"),
        (op("+", 1, 2), "arithmetic"),
        (op("frobnicate", 1), "unknown operator 'frobnicate'"),
        ({"args": []}, "expected a CQL2 expression"),
        ("a = = b", "the CQL2 text is malformed at line 1, column 5"),
        (op("=", P("geometry"), "x"), "does not apply to geometry"),
        (op("a_contains", P("id"), ["x"]), "takes a facet property"),
    ]
    for expression, message in cases:
        with pytest.raises(InvalidInput) as caught:
            sqlite_catalog.search.search(SearchRequest(filter=expression))
        assert message in caught.value.detail, (expression, caught.value.detail)
