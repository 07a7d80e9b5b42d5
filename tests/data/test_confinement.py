"""Registered data never reaches files outside the allowed roots, whatever symbolic links
say, at registration or later; hostile path inputs answer 400 naming the field."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import xarray as xr

from tests.data.test_http import Node, make_node
from tests.helpers import assert_problem

SECRET = b"TOP-SECRET-0123456789"


@pytest.fixture
def node(tmp_path: Path, serve: Callable[[Any], str]) -> Iterator[Node]:
    yield from make_node(tmp_path / "root", serve)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside the node's allowed roots, holding a secret."""
    where = tmp_path / "outside"
    where.mkdir()
    (where / "secret.txt").write_bytes(SECRET)
    return where


def byte_references(target: str, length: int) -> dict[str, Any]:
    """A reference set of one uncompressed uint8 array whose only chunk is ``target``."""
    zarray = {
        "zarr_format": 2,
        "shape": [length],
        "chunks": [length],
        "dtype": "|u1",
        "compressor": None,
        "filters": None,
        "fill_value": None,
        "order": "C",
    }
    return {
        "version": 1,
        "refs": {
            ".zgroup": json.dumps({"zarr_format": 2}),
            "v/.zarray": json.dumps(zarray),
            "v/.zattrs": json.dumps({"_ARRAY_DIMENSIONS": ["x"]}),
            "v/0": [target, 0, length],
        },
    }


def write_json(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc))
    return path


def assert_not_served(r: httpx.Response) -> None:
    assert SECRET not in r.content
    assert_problem(r, 403, "outside the allowed roots")


def test_a_reference_through_a_symlink_and_dotdot_is_refused(node: Node, outside: Path) -> None:
    # ROOT/sub/lnk/../secret.txt: read lexically it is the decoy ROOT/sub/secret.txt; the
    # kernel follows lnk first and reads OUTSIDE/secret.txt.
    sub = node.root / "sub"
    sub.mkdir()
    (sub / "secret.txt").write_bytes(b"x" * len(SECRET))
    (sub / "lnk").symlink_to(outside / "inner", target_is_directory=True)
    (outside / "inner").mkdir()
    target = f"{sub}/lnk/../secret.txt"
    refs = write_json(node.root / "dotdot.json", byte_references(target, len(SECRET)))
    r = node.register("ref-dotdot", [str(refs)])
    assert_problem(r, 400, "outside the allowed roots")
    assert "ref-dotdot" not in node.http.get("/datasets").json()


def test_a_reference_target_swapped_for_a_symlink_is_not_served(node: Node, outside: Path) -> None:
    t8 = node.root / "t8.bin"
    t8.write_bytes(b"harmless" * 3)
    refs = write_json(node.root / "toctou.json", byte_references(str(t8), len(SECRET)))
    assert node.register("ref-toctou", [str(refs)]).status_code == 201
    assert (
        node.http.get("/datasets/ref-toctou/kerchunk/v/0").content
        == (b"harmless" * 3)[: len(SECRET)]
    )
    t8.unlink()
    t8.symlink_to(outside / "secret.txt")
    for _ in range(2):  # the plain path, then the fast path of a dataset already open
        assert_not_served(node.http.get("/datasets/ref-toctou/kerchunk/v/0"))
    assert_not_served(node.http.get("/datasets/ref-toctou/zarr/v/0"))
    assert_not_served(node.http.get("/datasets/ref-toctou/zarr/v/c/0"))
    read: list[bytes] = []
    with contextlib.suppress(Exception):  # whatever a client raises on a 403
        read.append(node.open("ref-toctou", "zarr", zarr_format=3).v.values.tobytes())
    assert SECRET not in b"".join(read)


def test_a_directory_on_the_way_swapped_for_a_symlink_is_not_served(
    node: Node, outside: Path
) -> None:
    sub = node.root / "sub"
    sub.mkdir()
    (sub / "secret.txt").write_bytes(b"y" * len(SECRET))
    refs = write_json(node.root / "dir.json", byte_references(str(sub / "secret.txt"), len(SECRET)))
    assert node.register("ref-dir", [str(refs)]).status_code == 201
    sub.rename(node.root / "sub-old")
    sub.symlink_to(outside, target_is_directory=True)
    assert_not_served(node.http.get("/datasets/ref-dir/kerchunk/v/0"))
    assert_not_served(node.http.get("/datasets/ref-dir/zarr/v/0"))


def test_a_symlink_inside_a_zarr_store_is_not_served(node: Node, outside: Path) -> None:
    store = node.root / "store.zarr"
    data = np.frombuffer(b"z" * len(SECRET), dtype="u1")
    xr.Dataset({"v": ("x", data)}).to_zarr(
        store, zarr_format=2, encoding={"v": {"compressors": None, "filters": None}}
    )
    chunk = store / "v" / "0"
    assert chunk.read_bytes() == b"z" * len(SECRET)
    chunk.unlink()
    chunk.symlink_to(outside / "secret.txt")
    assert node.register("zarr-link", [str(store)]).status_code == 201
    assert_not_served(node.http.get("/datasets/zarr-link/zarr/v/0"))
    assert_not_served(node.http.get("/datasets/zarr-link/zarr/v/c/0"))
    states = {s["id"]: s["state"] for s in node.http.get("/api/datasets").json()}
    assert states == {"zarr-link": "ok"}  # one bad chunk: the rest is still served


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("sources", {"sources": ["/data/a\x00b.nc"]}),
        ("sources", {"sources": ["/data/" + "a" * 5000 + ".nc"]}),
        ("title", {"title": "a\x00b"}),
        ("concat_dim", {"concat_dim": "ti\x00me"}),
        ("id", {"id": "a\x00b"}),
    ],
)
def test_nul_bytes_and_overlong_paths_answer_400_naming_the_field(
    node: Node, netcdf_file: Path, field: str, body: dict[str, Any]
) -> None:
    inside = node.root / netcdf_file.name
    inside.write_bytes(netcdf_file.read_bytes())
    full = {"id": "x", "sources": [str(inside)], **body}
    r = node.http.post("/api/datasets", json=full, headers=node.auth)
    assert_problem(r, 400, field)
    assert node.http.get("/datasets").json() == []
