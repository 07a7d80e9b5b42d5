"""Rendering templates as Jetstream does, in a sandbox: helpers, includes, macros, loops
over the config's samples, context precedence, exec, and every error naming the template
file and line."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from strato.errors import InvalidInput
from strato.pipelines.model.errors import ExecNotAllowed, TemplateError, WorkflowError
from strato.pipelines.model.pipeline import Pipeline, load_pipeline
from strato.pipelines.model.render import merge, render, render_text
from strato.pipelines.model.workflow import Workflow

from .model_helpers import make_pipeline


def pipeline(tmp_path: Path, template: str, **kwargs: Any) -> Pipeline:
    return load_pipeline(make_pipeline(tmp_path, template=template, **kwargs))


def rendered(
    tmp_path: Path, template: str, config: dict[str, Any] | None = None, **kw: Any
) -> Workflow:
    return render(pipeline(tmp_path, template, **kw), config)


def template_error(tmp_path: Path, template: str, **kwargs: Any) -> TemplateError:
    with pytest.raises(TemplateError) as info:
        rendered(tmp_path, template, **kwargs)
    assert isinstance(info.value, InvalidInput)
    assert info.value.code == "template-error"
    return info.value


def test_loop_over_samples_from_the_config(tmp_path: Path) -> None:
    template = """\
    {% for sample in samples %}
    - name: align_{{ sample.name }}
      cmd: bwa mem {{ sample.fastq }} > {{ sample.name }}.bam
      output: {{ sample.name }}.bam
    {% endfor %}
    - name: joint
      input: [{% for s in samples %}{{ s.name }}.bam{{ ", " if not loop.last }}{% endfor %}]
      cmd: joint-call *.bam
    """
    samples = [{"name": "s1", "fastq": "a.fq"}, {"name": "s2", "fastq": "b.fq"}]
    wf = rendered(tmp_path, template, {"samples": samples})
    assert list(wf.tasks) == ["align_s1", "align_s2", "joint"]
    assert wf.tasks["align_s2"].cmd == "bwa mem b.fq > s2.bam"
    assert wf.parents["joint"] == {"align_s1", "align_s2"}


def test_trim_and_lstrip_blocks_keep_yaml_indentation(tmp_path: Path) -> None:
    template = """\
    - name: t
      cmd: |
        {% if flag %}
        echo on
        {% else %}
        echo off
        {% endif %}
        echo done
    """
    assert rendered(tmp_path, template, {"flag": True}).tasks["t"].cmd == "echo on\necho done\n"


def test_do_extension(tmp_path: Path) -> None:
    template = """\
    {% set names = [] %}
    {% for i in range(3) %}{% do names.append("t" ~ i) %}{% endfor %}
    {% for n in names %}
    - name: {{ n }}
    {% endfor %}
    """
    assert list(rendered(tmp_path, template).tasks) == ["t0", "t1", "t2"]


def test_includes_imports_and_macros_from_the_pipeline(tmp_path: Path) -> None:
    files = {
        "macros/align.jst": """\
        {% macro align(sample) %}
        - name: align_{{ sample }}
          cmd: align {{ sample }}
          output: {{ sample }}.bam
        {% endmacro %}
        """,
        "qc.jst": """\
        - name: qc
          input-re: '.*\\.bam'
          cmd: qc
        """,
    }
    template = """\
    {% from 'macros/align.jst' import align %}
    {% import 'macros/align.jst' as m %}
    {{ align('a') }}
    {{ m.align('b') }}
    {% include 'qc.jst' %}
    """
    wf = rendered(tmp_path, template, files=files)
    assert list(wf.tasks) == ["align_a", "align_b", "qc"]
    assert wf.parents["qc"] == {"align_a", "align_b"}


def test_include_outside_the_pipeline_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "secret.jst").write_text("- name: leaked\n")
    error = template_error(tmp_path / "p", "{% include '../secret.jst' %}\n")
    assert "'../secret.jst' not found" in error.detail


def test_helpers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    template = """\
    {% set meta = '{"id": 7}' | fromjson %}
    {% set url = 'https://host.example:8443/data/x.bam' | urlparse %}
    {{ log('rendering ' ~ meta.id) }}
    - name: t
      cmd: echo
      id: {{ meta.id }}
      base: {{ '/a/b/c.fq' | basename }}
      dir: {{ '/a/b/c.fq' | dirname }}
      netloc: {{ url.netloc }}
      sha: {{ 'abc' | sha256 }}
      md5: {{ 'abc' | md5 }}
      home: {{ getenv('PIPE_HOME', 'none') }}
      absent: {{ getenv('NOT_THERE', 'fallback') }}
    """
    p = pipeline(tmp_path, template)
    with caplog.at_level(logging.INFO, logger="strato.pipelines.model.render"):
        wf = render(p, environ={"PIPE_HOME": "/srv/pipe"})
    d = wf.tasks["t"].directives
    assert d["id"] == 7
    assert d["base"] == "c.fq"
    assert d["dir"] == "/a/b"
    assert d["netloc"] == "host.example:8443"
    assert d["sha"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert d["md5"] == "900150983cd24fb0d6963f7d28e17f72"
    assert d["home"] == "/srv/pipe"
    assert d["absent"] == "fallback"
    assert "rendering 7" in caplog.text


def test_getenv_reads_only_what_it_is_handed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVER_SECRET", "s3cret")
    wf = rendered(tmp_path, "- name: t\n  v: {{ getenv('SERVER_SECRET', 'hidden') }}\n")
    assert wf.tasks["t"].directives["v"] == "hidden"


def test_context_precedence(tmp_path: Path) -> None:
    template = """\
    - name: t
      cmd: >-
        echo {{ a }} {{ b }} {{ c }} {{ nested.x }} {{ nested.y }} {{ nested.z }}
        {{ items | join(',') }}
    """
    p = pipeline(
        tmp_path,
        template,
        defaults={
            "b": "manifest",
            "c": "manifest",
            "nested": {"y": "manifest", "z": "manifest"},
            "items": [1, 2, 3],
        },
    )
    project = {
        "a": "project",
        "b": "project",
        "nested": {"x": "project", "y": "project"},
        "items": [9],
    }
    wf = render(p, {"c": "config", "nested": {"z": "config"}, "items": [4]}, defaults=project)
    # project < manifest < config; mappings merged deeply, lists replaced.
    assert wf.tasks["t"].cmd == "echo project manifest config project manifest config 4"


def test_merge_does_not_edit_its_layers() -> None:
    base = {"m": {"a": 1}}
    out = merge(base, {"m": {"b": 2}})
    assert out == {"m": {"a": 1, "b": 2}}
    assert base == {"m": {"a": 1}}


def test_manifest_is_in_the_context(tmp_path: Path) -> None:
    wf = rendered(
        tmp_path, "- name: t\n  cmd: echo {{ __pipeline__.name }} {{ __pipeline__.version }}\n"
    )
    assert wf.tasks["t"].cmd == "echo demo 1.0.0"


def test_mapping_with_tasks_and_empty_output(tmp_path: Path) -> None:
    wf = rendered(tmp_path / "a", "note: kept\ntasks:\n  - name: t\n    cmd: echo\n")
    assert list(wf.tasks) == ["t"]
    assert rendered(tmp_path / "b", "{# nothing #}\n").tasks == {}
    assert rendered(tmp_path / "c", "tasks:\n").tasks == {}


@pytest.mark.parametrize(
    "expression",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ (lambda_ | default(range)).__globals__ }}",
        "{{ 'x'.format.__self__ }}",
        "{{ config.__class__ }}",
    ],
)
def test_the_sandbox_refuses_python_internals(tmp_path: Path, expression: str) -> None:
    template = f'- name: t\n  cmd: echo "{expression}"\n'
    error = template_error(tmp_path, template, defaults={"config": {"a": 1}})
    assert "main.jst, line 2" in error.detail
    assert "sandbox" in error.detail or "unsafe" in error.detail or "undefined" in error.detail


def test_the_sandbox_bounds_repetition_and_ranges(tmp_path: Path) -> None:
    error = template_error(tmp_path / "a", "- name: t\n  cmd: {{ 'x' * 100000000 }}\n")
    assert "repetition" in error.detail
    assert "line 2" in error.detail
    error = template_error(tmp_path / "b", "{% for i in range(10**9) %}{% endfor %}\n")
    assert "line 1" in error.detail


def test_exec_refused_unless_allowed(tmp_path: Path) -> None:
    template = "- name: py\n  exec: print('hi')\n"
    p = pipeline(tmp_path, template)
    with pytest.raises(ExecNotAllowed) as info:
        render(p)
    assert isinstance(info.value, InvalidInput)
    assert "demo@1.0.0" in info.value.detail
    assert "'py'" in info.value.detail
    assert "exec_pipelines" in info.value.detail
    with pytest.raises(ExecNotAllowed):
        render(p, exec_pipelines=["other", "demo@2.0.0"])
    for allowed in (["demo"], ["demo@1.0.0"]):
        wf = render(p, exec_pipelines=allowed)
        assert wf.tasks["py"].directives["exec"] == "print('hi')"
        assert wf.tasks["py"].cmd is None


def test_undefined_variable_names_template_and_line(tmp_path: Path) -> None:
    error = template_error(
        tmp_path, "- name: t\n  cmd: echo\n- name: u\n  cmd: echo {{ missing }}\n"
    )
    assert "main.jst, line 4" in error.detail
    assert "'missing' is undefined" in error.detail
    assert error.template == "main.jst"
    assert error.line == 4


def test_error_in_an_included_file_names_that_file(tmp_path: Path) -> None:
    files = {"parts/inc.jst": "- name: a\n\n  cmd: {{ nope.attr }}\n"}
    error = template_error(tmp_path, "{% include 'parts/inc.jst' %}\n", files=files)
    assert "parts/inc.jst, line 3" in error.detail


def test_syntax_error_names_template_and_line(tmp_path: Path) -> None:
    error = template_error(tmp_path, "- name: t\n  cmd: echo\n{% for x in %}\n")
    assert "main.jst, line 3" in error.detail
    assert "syntax error" in error.detail
    files = {"bad.jst": "ok\n{% if %}\n"}
    error = template_error(tmp_path / "b", "{% include 'bad.jst' %}\n", files=files)
    assert "bad.jst, line 2" in error.detail


def test_raise_from_a_template(tmp_path: Path) -> None:
    template = """\
    {% if samples | length == 0 %}
    {{ raise('give at least one sample') }}
    {% endif %}
    """
    error = template_error(tmp_path, template, defaults={"samples": []})
    assert "main.jst, line 2" in error.detail
    assert "give at least one sample" in error.detail


def test_helper_failure_names_the_line(tmp_path: Path) -> None:
    error = template_error(tmp_path, "- name: t\n  v: {{ 'not json' | fromjson }}\n")
    assert "main.jst, line 2" in error.detail
    assert "JSONDecodeError" in error.detail


def test_bad_yaml_names_the_template_and_rendered_line(tmp_path: Path) -> None:
    error = template_error(tmp_path, "- name: t\n  cmd: echo\n - name: u\n   cmd: [\n")
    assert error.detail.startswith("main.jst: the rendered YAML is invalid at its line")


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("just a string\n", "rendered to a str"),
        ("tasks: 5\n", "'tasks:' is no list"),
        ("- 5\n", "task #1: expected a mapping"),
    ],
)
def test_output_that_is_no_task_list(tmp_path: Path, output: str, expected: str) -> None:
    with pytest.raises(InvalidInput, match=expected):
        rendered(tmp_path, output)


def test_yaml_alias_bombs_are_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines.append("tasks: []")
    error = template_error(tmp_path, "\n".join(lines) + "\n")
    assert "more than" in error.detail


def test_render_text_is_the_rendered_yaml(tmp_path: Path) -> None:
    p = pipeline(tmp_path, "- name: {{ n }}\n", defaults={"n": "x"})
    assert render_text(p) == "- name: x\n"


@pytest.mark.timeout(120)
def test_five_thousand_tasks_render_without_quadratic_matching(tmp_path: Path) -> None:
    # Each task reads its predecessor's output, matches a regex over names with a literal
    # prefix and one over outputs: n lookups each, not n*n scans. Bounded by pytest's
    # timeout, never by a measured time.
    template = """\
    {% for i in range(n) %}
    - name: step_{{ i }}
      cmd: touch out_{{ i }}.txt
      output: out_{{ i }}.txt
      {% if i > 0 %}
      input: out_{{ i - 1 }}.txt
      after-re: 'step_{{ i - 1 }}'
      input-re: 'out_{{ i - 1 }}\\.txt'
      {% endif %}
    {% endfor %}
    - name: gather
      input-re: 'out_.*\\.txt'
    """
    wf = rendered(tmp_path, template, {"n": 5000})
    assert len(wf.tasks) == 5001
    assert wf.parents["step_4999"] == {"step_4998"}
    assert len(wf.parents["gather"]) == 5000
    assert json.dumps(wf.edges()).count("gather") == 5000


def test_duplicate_names_in_a_template_are_refused(tmp_path: Path) -> None:
    template = "{% for i in range(2) %}\n- name: same\n  cmd: echo {{ i }}\n{% endfor %}\n"
    with pytest.raises(WorkflowError, match="two tasks are named 'same' \\(tasks #1 and #2\\)"):
        rendered(tmp_path, template)
