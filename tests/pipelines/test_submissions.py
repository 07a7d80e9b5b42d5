"""What a submitted config and a WES attachment's name are checked for, before anything
is made: the place of what is wrong is named."""

from __future__ import annotations

from typing import Any

import pytest

from strato.errors import InvalidInput
from strato.pipelines.submissions import CENTRO_SCHEMA, check_config, safe_name, validate


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/passwd", "", "a\nb", "a\\b"])
def test_attachment_names_that_leave_the_run_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match="workflow_attachment"):
        safe_name(name)


def test_attachment_names_inside_the_run_are_kept() -> None:
    assert safe_name("inputs/samples.csv") == "inputs/samples.csv"
    assert safe_name("./a.txt") == "a.txt"


@pytest.mark.parametrize(
    ("config", "where"),
    [
        ({"a": {"b": ["ok", "x\ry"]}}, "a.b[1]"),
        ({"a": "x\u2028y"}, "a"),
        ({"a": "x\x00"}, "a"),
        ({"k\nk": 1}, "'k\\nk'"),
        ({"deep": __import__("functools").reduce(lambda v, _: [v], range(40), 1)}, "deep"),
    ],
)
def test_configs_with_what_would_break_the_yaml_are_refused_naming_where(
    config: dict[str, Any], where: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_config(config)
    assert refused.value.detail.startswith(where)


def test_tabs_and_ordinary_text_pass() -> None:
    check_config({"a": "tab\there", "b": ["ünïcode", 1, None, True], "c": {"d": 2.5}})


def test_centros_required_fields_are_named_one_by_one() -> None:
    with pytest.raises(InvalidInput) as refused:
        validate({"pipeline": "x@1", "project": "p", "email": "e"}, CENTRO_SCHEMA)
    fields = {e["field"] for e in refused.value.errors}
    assert fields == {"hpcAccount", "isilonPath"}
