"""`strato pipelines list|show|render` on a typer app they are registered on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from strato.pipelines.cli import register

from .model_helpers import make_pipeline

TEMPLATE = """\
{% for s in samples %}
- name: align_{{ s }}
  cmd: align {{ s }} --threads {{ threads }} --fast {{ fast }}
  output: {{ s }}.bam
{% endfor %}
- name: merge
  input-re: '.*\\.bam'
  cmd: merge {{ extra.label }}
"""


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """strato."""

    register(app)
    return app


@pytest.fixture
def search(tmp_path: Path) -> Path:
    make_pipeline(
        tmp_path,
        "align",
        "1.0.0",
        template=TEMPLATE,
        defaults={"samples": ["a"], "threads": 1, "fast": False, "extra": {"label": "x"}},
    )
    make_pipeline(tmp_path, "align", "1.1.0", template=TEMPLATE, defaults={"samples": ["z"]})
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "pipeline.yaml").write_text("nope: 1\n")
    return tmp_path


def run(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_list(app: typer.Typer, search: Path) -> None:
    code, out, err = run(app, "pipelines", "list", "-p", str(search))
    assert code == 0
    assert "align@1.0.0" in out
    assert "align@1.1.0" in out
    assert "broken" in err
    assert "no __pipeline__" in err
    code, out, _ = run(app, "pipelines", "list", "-p", str(search), "--json")
    data = json.loads(out)
    assert [p["version"] for p in data["pipelines"]] == ["1.0.0", "1.1.0"]
    assert len(data["problems"]) == 1


def test_show(app: typer.Typer, search: Path) -> None:
    code, out, _ = run(app, "pipelines", "show", "align@1.0.0", "-p", str(search))
    assert code == 0
    data = json.loads(out)
    assert data["name"] == "align"
    assert data["version"] == "1.0.0"
    assert data["main"] == "main.jst"
    assert data["defaults"]["threads"] == 1
    assert data["schema"] is None
    code, out, _ = run(app, "pipelines", "show", "align", "-p", str(search))
    assert json.loads(out)["version"] == "1.1.0"


def test_render_overrides_file_with_values(app: typer.Typer, search: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"samples": ["s1", "s2"], "threads": 2, "extra": {"label": "f"}}))
    code, out, err = run(
        app,
        "pipelines",
        "render",
        "align@1.0.0",
        "-p",
        str(search),
        "-C",
        str(config),
        "-c",
        "int:threads",
        "8",
        "-c",
        "bool:fast",
        "yes",
        "-c",
        "json:extra",
        '{"label": "cli"}',
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["pipeline"] == "align@1.0.0"
    tasks = {t["name"]: t for t in data["tasks"]}
    assert list(tasks) == ["align_s1", "align_s2", "merge"]
    assert tasks["align_s1"]["cmd"] == "align s1 --threads 8 --fast True"
    assert tasks["merge"]["cmd"] == "merge cli"
    assert tasks["merge"]["parents"] == ["align_s1", "align_s2"]
    assert data["edges"] == [["align_s1", "merge"], ["align_s2", "merge"]]


def test_render_text(app: typer.Typer, search: Path) -> None:
    code, out, _ = run(
        app, "pipelines", "render", "align@1.0.0", "-p", str(search), "-c", "threads", "3"
    )
    assert code == 0
    assert out.splitlines()[0] == "align@1.0.0: 2 tasks, 1 edges"
    assert "- align_a\n    align a --threads 3 --fast False\n" in out
    assert "- merge  after align_a" in out
    assert "  align_a -> merge" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-c", "int:threads", "many"], "not a int"),
        (["-c", "bool:fast", "maybe"], "not a bool"),
        (["-c", "json:extra", "{"], "not a json"),
        (["-c", "list:x", "1"], "unknown type 'list'"),
        (["-c", "threads"], "takes two values"),
        (["--what"], "unexpected argument '--what'"),
    ],
)
def test_render_bad_values(app: typer.Typer, search: Path, args: list[str], expected: str) -> None:
    from strato.errors import InvalidInput

    result = CliRunner().invoke(app, ["pipelines", "render", "align", "-p", str(search), *args])
    assert isinstance(result.exception, InvalidInput)
    assert expected in result.exception.detail


def test_render_errors_name_what_and_where(app: typer.Typer, search: Path) -> None:
    from strato.pipelines.model.errors import PipelineNotFound, TemplateError

    result = CliRunner().invoke(app, ["pipelines", "render", "align@9", "-p", str(search)])
    assert isinstance(result.exception, PipelineNotFound)
    assert "1.0.0, 1.1.0" in result.exception.detail
    # 1.1.0's manifest lacks `threads`: the template names it and its line.
    result = CliRunner().invoke(app, ["pipelines", "render", "align", "-p", str(search)])
    assert isinstance(result.exception, TemplateError)
    assert "main.jst, line 3" in result.exception.detail
    assert "'threads' is undefined" in result.exception.detail
