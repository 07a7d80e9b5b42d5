"""Directives into TaskSpecs and the DAG: every directive, -re matching, reset, identity,
and the errors naming the tasks (duplicates, missing targets, cycles, bad values)."""

from __future__ import annotations

from typing import Any

import pytest

from strato.pipelines.model.dag import build_workflow, literal_prefix
from strato.pipelines.model.errors import WorkflowError


def wf(*tasks: dict[str, Any]) -> Any:
    return build_workflow(list(tasks))


def test_every_directive_is_parsed() -> None:
    w = wf(
        {
            "name": "full",
            "cmd": "sort",
            "retry": 2,
            "cpus": 4,
            "mem": "4G",
            "walltime": "02:30:00",
            "stdin": "b\na\n",
            "stdout": "logs/full.out",
            "stderr": "logs/full.err",
            "reset": ["other"],
            "partition": "gpu",  # unknown: kept
            "tags": {"a": 1},
        },
        {"name": "other"},
    )
    t = w.tasks["full"]
    assert (t.cmd, t.retry, t.cpus, t.mem_mb, t.walltime_s) == ("sort", 2, 4, 4096, 9000.0)
    assert (t.stdin, t.stdout, t.stderr, t.reset) == (
        "b\na\n",
        "logs/full.out",
        "logs/full.err",
        ("other",),
    )
    assert t.directives["partition"] == "gpu"
    assert t.directives["tags"] == {"a": 1}
    other = w.tasks["other"]
    assert (other.cmd, other.cpus, other.mem_mb, other.walltime_s, other.retry) == (
        None,
        1,
        0,
        None,
        0,
    )


@pytest.mark.parametrize(
    ("mem", "mb"),
    [
        (512, 512),
        ("512M", 512),
        ("4G", 4096),
        ("4GB", 4096),
        ("1.5g", 1536),
        ("1T", 1048576),
        ("2048K", 2),
        ("100", 100),
    ],
)
def test_mem(mem: Any, mb: int) -> None:
    assert wf({"name": "t", "mem": mem}).tasks["t"].mem_mb == mb


@pytest.mark.parametrize(
    ("walltime", "seconds"),
    [
        (90, 90.0),
        ("00:01:30", 90.0),
        ("1-00:00:00", 86400.0),
        ("2-01:02:03", 176523.0),
        ("36:00:00", 129600.0),
    ],
)
def test_walltime(walltime: Any, seconds: float) -> None:
    assert wf({"name": "t", "walltime": walltime}).tasks["t"].walltime_s == seconds


@pytest.mark.parametrize(
    ("directive", "value", "expected"),
    [
        ("mem", "lots", "mem: expected MB or a size"),
        ("mem", -1, "mem: must not be negative"),
        ("walltime", "1:99:00", "walltime: minutes and seconds go to 59"),
        ("walltime", "soon", "walltime: expected seconds"),
        ("walltime", 0, "walltime: must be positive"),
        ("cpus", 0, "cpus: must be at least 1"),
        ("cpus", "four", "cpus: expected a whole number"),
        ("retry", -1, "retry: must be at least 0"),
        ("retry", True, "retry: expected a whole number"),
        ("cmd", ["echo"], "cmd: expected a string"),
        ("after", 5, "after: expected a string or a list of strings"),
        ("input", [1], "input: expected a string or a list of strings"),
        ("after-re", "([", "after-re: invalid regular expression"),
        ("stdout", {"a": 1}, "stdout: expected a string"),
        ("stdin", ["a"], "stdin: expected text"),
    ],
)
def test_bad_directive_values_name_task_and_directive(
    directive: str, value: Any, expected: str
) -> None:
    with pytest.raises(WorkflowError) as info:
        wf({"name": "bad", directive: value})
    assert info.value.detail.startswith("task 'bad': ")
    assert expected in info.value.detail


@pytest.mark.parametrize("name", ["has space", "a.b", "a/b", "x" * 201, "é"])
def test_bad_names(name: str) -> None:
    with pytest.raises(WorkflowError, match="is not a task name"):
        wf({"name": name})


def test_unnamed_tasks_are_named_by_their_identity() -> None:
    w = wf({"cmd": "echo a"}, {"name": "", "cmd": "echo b"})
    names = list(w.tasks)
    assert all(len(n) == 64 for n in names)
    assert names[0] == w.tasks[names[0]].identity


def test_after_and_before() -> None:
    w = wf(
        {"name": "a"},
        {"name": "b", "after": "a"},
        {"name": "c", "after": ["a", "b"], "before": "d"},
        {"name": "d"},
    )
    assert w.parents == {"a": set(), "b": {"a"}, "c": {"a", "b"}, "d": {"c"}}
    assert list(w.ready(set())) == ["a"]
    assert w.descendants("a") == {"b", "c", "d"}


def test_missing_after_and_before_targets_name_both_tasks() -> None:
    with pytest.raises(WorkflowError, match="task 'b' is after 'ghost', which is no task"):
        wf({"name": "b", "after": "ghost"})
    with pytest.raises(WorkflowError, match="task 'b' is before 'ghost', which is no task"):
        wf({"name": "b", "before": ["ghost"]})
    with pytest.raises(WorkflowError, match="task 'b' resets 'ghost', which is no task"):
        wf({"name": "b", "reset": "ghost"})


def test_input_output_matching() -> None:
    w = wf(
        {"name": "make_a", "output": "a.txt"},
        {"name": "make_bc", "output": ["b.txt", "c.txt"]},
        {"name": "use", "input": ["a.txt", "c.txt", "external.txt"]},
        {"name": "self", "input": "s.txt", "output": "s.txt"},
    )
    assert w.parents["use"] == {"make_a", "make_bc"}
    assert w.parents["self"] == set()  # its own output is no dependency


def test_regex_directives_match_whole_names_and_outputs() -> None:
    w = wf(
        {"name": "align_s1", "output": "s1.bam"},
        {"name": "align_s2", "output": "s2.bam"},
        {"name": "align_s2_index", "output": "s2.bam.bai"},
        {"name": "xalign_s3"},
        {"name": "merge", "after-re": "align_s[0-9]"},
        {"name": "index", "input-re": r".*\.bam"},
        {"name": "setup", "before-re": ["align_.*", "merge"]},
    )
    # Anchored: 'align_s[0-9]' matches neither align_s2_index nor xalign_s3.
    assert w.parents["merge"] == {"align_s1", "align_s2", "setup"}
    assert w.parents["index"] == {"align_s1", "align_s2"}  # not s2.bam.bai
    assert w.parents["align_s2_index"] == {"setup"}
    assert w.parents["xalign_s3"] == set()
    assert w.parents["setup"] == set()  # before-re matching nothing of itself


def test_regex_matching_itself_is_no_edge() -> None:
    w = wf({"name": "step_1", "after-re": "step_1"}, {"name": "step_2", "after-re": "step_.*"})
    assert w.parents == {"step_1": set(), "step_2": {"step_1"}}


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [
        ("abc", "abc"),
        ("ab*", "a"),
        ("ab?c", "a"),
        ("a.c", "a"),
        ("(?i)abc", ""),
        ("a|b", ""),
        ("ab[0-9]", "ab"),
        ("a{2}", ""),
        ("", ""),
        (r"ab\.c", "ab"),
    ],
)
def test_literal_prefix(pattern: str, prefix: str) -> None:
    assert literal_prefix(pattern) == prefix


def test_case_insensitive_regex_still_matches() -> None:
    w = wf({"name": "Align"}, {"name": "m", "after-re": "(?i)align"})
    assert w.parents["m"] == {"Align"}


def test_reset_parents() -> None:
    w = wf({"name": "a"}, {"name": "b", "after": "a", "reset": "parents"})
    assert w.tasks["b"].reset == "parents"


def test_duplicate_names_are_refused_naming_the_task() -> None:
    with pytest.raises(WorkflowError, match="two tasks are named 'dup' \\(tasks #1 and #3\\)"):
        wf({"name": "dup", "cmd": "a"}, {"name": "x"}, {"name": "dup", "cmd": "b"})


def test_cycles_name_the_tasks_in_them() -> None:
    with pytest.raises(WorkflowError) as info:
        wf(
            {"name": "start"},
            {"name": "a", "after": ["c", "start"]},
            {"name": "b", "after": "a"},
            {"name": "c", "after": "b"},
            {"name": "tail", "after": "c"},
        )
    detail = info.value.detail
    assert "cycle" in detail
    cycle = detail.split(": ", 1)[1].split(" -> ")
    assert set(cycle) == {"a", "b", "c"}
    assert cycle[0] == cycle[-1]
    with pytest.raises(WorkflowError, match="cycle: me -> me"):
        wf({"name": "me", "after": "me"})
    with pytest.raises(WorkflowError, match="cycle"):
        wf(
            {"name": "p", "input": "q.txt", "output": "p.txt"},
            {"name": "q", "input": "p.txt", "output": "q.txt"},
        )


def test_identity_covers_what_changes_results() -> None:
    base = {"name": "t", "cmd": "echo a", "input": "x", "output": "y", "stdin": "s"}
    same = build_workflow([{**base, "cpus": 8, "retry": 3, "note": "n"}]).tasks["t"].identity
    assert same == build_workflow([base]).tasks["t"].identity
    assert same == build_workflow([{**base, "name": "renamed"}]).tasks["renamed"].identity
    for key, value in [
        ("cmd", "echo b"),
        ("input", "z"),
        ("output", ["y", "w"]),
        ("stdin", "t"),
        ("exec", "print(1)"),
    ]:
        changed = build_workflow([{**base, key: value}]).tasks["t"].identity
        assert changed != same, key
