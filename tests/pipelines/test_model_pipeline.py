"""Pipelines on disk: discovery under search paths, selection by name@version, @latest and
@development, manifests that are no pipeline, schemas, bin/ on PATH."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from strato.errors import InvalidInput, NotFound
from strato.pipelines.model.errors import InvalidPipeline, PipelineNotFound
from strato.pipelines.model.pipeline import discover, find, load_pipeline

from .model_helpers import make_pipeline


@pytest.fixture
def versions(tmp_path: Path) -> Path:
    for version in ("1.2.0", "1.10.0", "1.9.1", "2.0.0rc1", "development"):
        make_pipeline(tmp_path, "align", version)
    make_pipeline(tmp_path, "qc", 0.3)  # a float in YAML
    return tmp_path


def test_discovery_lists_every_pipeline_in_order(versions: Path) -> None:
    found = discover([versions])
    refs = sorted(p.ref for p in found.pipelines)
    assert refs == sorted(
        [
            "align@1.2.0",
            "align@1.10.0",
            "align@1.9.1",
            "align@2.0.0rc1",
            "align@development",
            "qc@0.3",
        ]
    )
    assert found.problems == []


def test_latest_is_the_highest_final_release(versions: Path) -> None:
    # 1.10.0 > 1.9.1 > 1.2.0 as versions (not as text); 2.0.0rc1 is a pre-release and
    # 'development' no release at all.
    assert find([versions], "align").version == "1.10.0"
    assert find([versions], "align@latest").version == "1.10.0"


def test_prereleases_are_latest_only_without_a_final(tmp_path: Path) -> None:
    make_pipeline(tmp_path, "beta", "0.1.0a1")
    make_pipeline(tmp_path, "beta", "0.1.0b2")
    assert find([tmp_path], "beta@latest").version == "0.1.0b2"


def test_exact_and_pep440_equal_versions(versions: Path) -> None:
    assert find([versions], "align@1.9.1").version == "1.9.1"
    assert find([versions], "align@1.2").version == "1.2.0"  # PEP 440: 1.2 == 1.2.0
    assert find([versions], "align@2.0.0rc1").version == "2.0.0rc1"
    assert find([versions], "qc@0.3").version == "0.3"


def test_development_by_version_or_flag(versions: Path, tmp_path: Path) -> None:
    assert find([versions], "align@development").version == "development"
    other = tmp_path / "other"
    make_pipeline(other, "flagged", "3.0.0.dev0", info={"development": True})
    make_pipeline(other, "flagged", "2.0.0")
    assert find([other], "flagged@development").version == "3.0.0.dev0"
    # A pipeline marked development is never 'latest'.
    assert find([other], "flagged").version == "2.0.0"


def test_first_search_path_wins_for_the_same_version(tmp_path: Path) -> None:
    first = make_pipeline(tmp_path / "a", "same", "1.0.0")
    make_pipeline(tmp_path / "b", "same", "1.0.0")
    assert find([tmp_path / "a", tmp_path / "b"], "same@1.0.0").path == first.resolve()
    assert find([tmp_path / "a", tmp_path / "b"], "same").path == first.resolve()


def test_unknown_pipeline_names_it_and_lists_what_exists(versions: Path) -> None:
    with pytest.raises(PipelineNotFound) as info:
        find([versions], "nope@1.0")
    assert isinstance(info.value, NotFound)
    assert info.value.code == "pipeline-not-found"
    assert "'nope'" in info.value.detail
    assert "align" in info.value.detail
    assert "qc" in info.value.detail


def test_unknown_version_names_it_and_lists_the_versions(versions: Path) -> None:
    with pytest.raises(PipelineNotFound) as info:
        find([versions], "align@7.0")
    detail = info.value.detail
    assert "'align'" in detail
    assert "'7.0'" in detail
    for version in ("1.2.0", "1.10.0", "development"):
        assert version in detail


def test_no_development_version(tmp_path: Path) -> None:
    make_pipeline(tmp_path, "stable", "1.0.0")
    with pytest.raises(PipelineNotFound, match=r"'development'.*1\.0\.0"):
        find([tmp_path], "stable@development")


@pytest.mark.parametrize("ref", ["", "@1.0", "a b", "name@", "../x", "x@1@2"])
def test_malformed_references(versions: Path, ref: str) -> None:
    with pytest.raises(PipelineNotFound, match="no pipeline reference"):
        find([versions], ref)


def test_nested_layout_and_pipeline_as_search_path(tmp_path: Path) -> None:
    make_pipeline(tmp_path / "tools" / "deep", "nested", "1.0.0")
    direct = make_pipeline(tmp_path, "direct", "1.0.0")
    assert find([tmp_path], "nested").name == "nested"
    assert find([direct], "direct").path == direct.resolve()


def test_a_pipelines_own_subdirectories_are_not_searched(tmp_path: Path) -> None:
    outer = make_pipeline(tmp_path, "outer", "1.0.0")
    make_pipeline(outer, "inner", "1.0.0", directory="templates")
    names = {p.name for p in discover([tmp_path]).pipelines}
    assert names == {"outer"}


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        ("just text", "no mapping"),
        ("name: x", "no __pipeline__"),
        ("__pipeline__: {version: 1}", "name None"),
        ("__pipeline__: {name: 'bad name', version: 1}", "'bad name' is not a name"),
        ("__pipeline__: {name: x}", "version None"),
        ("__pipeline__: {name: x, version: 1, main: other.jst}", "'other.jst' does not exist"),
        ("__pipeline__: {name: x, version: 1, main: ../../etc/passwd}", "outside the pipeline"),
        ("__pipeline__: [", "expected"),
        ("__pipeline__: {name: x, version: 1, schema: none.json}", "'none.json' does not exist"),
    ],
)
def test_invalid_manifests_name_the_file_and_the_problem(
    tmp_path: Path, manifest: str, expected: str
) -> None:
    path = tmp_path / "broken"
    path.mkdir()
    (path / "pipeline.yaml").write_text(manifest)
    (path / "main.jst").write_text("[]")
    with pytest.raises(InvalidPipeline) as info:
        load_pipeline(path)
    assert isinstance(info.value, InvalidInput)
    assert str(path / "pipeline.yaml") in info.value.detail
    assert expected in info.value.detail
    # Discovery skips it and says why, the valid ones still found.
    make_pipeline(tmp_path, "good", "1.0.0")
    found = discover([tmp_path])
    assert [p.name for p in found.pipelines] == ["good"]
    assert len(found.problems) == 1
    assert expected in found.problems[0]


def test_schema_default_file_and_declared(tmp_path: Path) -> None:
    default = make_pipeline(
        tmp_path, "s1", "1.0.0", files={"config.schema.json": '{"required": ["project"]}'}
    )
    declared = make_pipeline(
        tmp_path,
        "s2",
        "1.0.0",
        info={"schema": "schemas/config.json"},
        files={"schemas/config.json": '{"type": "object"}'},
    )
    broken = make_pipeline(tmp_path, "s3", "1.0.0", files={"config.schema.json": "{nope"})
    assert load_pipeline(default).schema() == {"required": ["project"]}
    assert load_pipeline(declared).schema() == {"type": "object"}
    assert load_pipeline(make_pipeline(tmp_path, "s4", "1.0.0")).schema() is None
    with pytest.raises(InvalidPipeline, match=re.escape("s3@1.0.0: schema config.schema.json")):
        load_pipeline(broken).schema()


def test_bin_directory_goes_first_on_path(tmp_path: Path) -> None:
    path = make_pipeline(tmp_path, "tools", "1.0.0", files={"bin/hello": "#!/bin/sh\n"})
    p = load_pipeline(path)
    env = p.task_env("/usr/bin:/bin")
    assert env["PATH"] == f"{path.resolve() / 'bin'}:/usr/bin:/bin"
    assert env["JS_PIPELINE_NAME"] == "tools"
    assert env["JS_PIPELINE_VERSION"] == "1.0.0"
    assert env["JS_PIPELINE_PATH"] == str(path.resolve())
    assert "PATH" not in load_pipeline(make_pipeline(tmp_path, "nobin", "1")).task_env("/bin")


def test_main_defaults_to_main_jst_and_may_be_named(tmp_path: Path) -> None:
    assert load_pipeline(make_pipeline(tmp_path, "a", "1")).main == "main.jst"
    assert load_pipeline(make_pipeline(tmp_path, "b", "1", main="flow.jst")).main == "flow.jst"
