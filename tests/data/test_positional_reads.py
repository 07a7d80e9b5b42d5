"""The one positional read of served bytes (strato.data.datasets.confine.read_at)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from strato.data.datasets.confine import OutsideRoots, read_at, read_resolved
from strato.data.raw.raw_store import read_range
from strato.errors import NotFound

DATA = bytes(range(256)) * 64


@pytest.fixture
def source(tmp_path: Path) -> str:
    path = tmp_path / "source.bin"
    path.write_bytes(DATA)
    return os.path.realpath(path)


def test_a_range_is_read_whole_or_not_at_all(source: str) -> None:
    fd = os.open(source, os.O_RDONLY)
    try:
        assert read_at(fd, 10, 100) == DATA[10:110]
        assert read_at(fd, 0, len(DATA)) == DATA
        assert read_at(fd, len(DATA) - 5, 10) is None  # past the end: the file changed
        assert read_at(fd, 0, 0) == b""
    finally:
        os.close(fd)


@pytest.mark.skipif(not hasattr(os, "RWF_NOWAIT"), reason="no RWF_NOWAIT here")
def test_a_cached_only_read_gives_the_same_bytes_from_the_page_cache(source: str) -> None:
    # Just written, so in the page cache.
    assert read_resolved(source, 100, 1000, cached_only=True) == DATA[100:1100]
    assert read_resolved(source, len(DATA) - 5, 10, cached_only=True) is None


def test_a_checked_path_is_read_only_while_it_is_that_file(tmp_path: Path, source: str) -> None:
    assert read_resolved(source, 0, 16) == DATA[:16]
    Path(source).write_bytes(DATA[:8])
    assert read_resolved(source, 0, 16) is None  # shrunk: never short bytes
    other = tmp_path / "other.bin"
    other.write_bytes(DATA)
    os.unlink(source)
    os.symlink(other, source)
    with pytest.raises(OutsideRoots):
        read_resolved(source, 0, 16)


def test_a_pipe_put_where_a_file_was_is_not_read(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    assert read_resolved(os.path.realpath(pipe), 0, 16) is None
    assert read_resolved(os.path.realpath(pipe), 0, 16, cached_only=True) is None


def test_a_referenced_range_reads_through_links_resolved_once(tmp_path: Path, source: str) -> None:
    link = tmp_path / "link.bin"
    link.symlink_to(source)
    assert read_range(str(link), 5, 5) == DATA[5:10]
    with pytest.raises(NotFound, match="changed"):
        read_range(str(link), len(DATA), 1)
