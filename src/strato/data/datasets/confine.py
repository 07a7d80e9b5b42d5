"""Keeping served data inside the allowed roots, whatever symbolic links say.

A path is resolved once, the way the kernel will resolve it (``os.path.realpath``:
symbolic links first, then ``..``; a lexical ``normpath`` would read ``lnk/../f`` as a
file next to ``lnk`` while the kernel reads one next to where ``lnk`` points), and the
result is checked against the roots. Files are then opened so that a symbolic link put in
place afterwards is not followed out: the real path of the opened file descriptor is
checked again (``/proc/self/fd``), so even a directory on the way swapped for a link is
caught, and the check and the read are on the same open file.

:func:`read_at` is the one positional read of served bytes (the raw chunks of
``/kerchunk`` in both of their paths, the confined Zarr stores, the coordinates a
reference set inlines): a short read means the file changed, never short bytes served.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import overload

from strato.errors import Forbidden, InvalidInput

# The kernel refuses longer paths (PATH_MAX); refusing them here names the field instead.
MAX_PATH_BYTES = 4096
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# A named pipe put where a file was expected would block the open until someone writes.
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
# Linux: a read that fails instead of waiting for the disk.
_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)


class OutsideRoots(Forbidden):
    code = "outside-roots"
    title = "Outside the allowed roots"


def check_path_text(value: str, field: str) -> str:
    """Refuse what no file system path can hold, naming the field it came in."""
    if "\x00" in value:
        raise InvalidInput(f"{field}: a path cannot contain a NUL byte")
    if len(value.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        raise InvalidInput(f"{field}: a path is at most {MAX_PATH_BYTES} bytes long")
    return value


def as_root_strings(roots: Iterable[Path | str]) -> list[str]:
    return [os.path.realpath(r) for r in roots]


def is_within(real: str, roots: Sequence[str]) -> bool:
    """Whether the resolved path ``real`` is one of ``roots`` or under one of them."""
    return any(real == root or real.startswith(root.rstrip("/") + "/") for root in roots)


def resolve_within(path: str, roots: Sequence[str], what: str) -> str:
    """``path`` resolved as the kernel resolves it; InvalidInput if that leaves the roots.

    ``roots`` must be resolved already (:func:`as_root_strings`); no roots means any path.
    """
    real = os.path.realpath(path)
    if roots and not is_within(real, roots):
        raise InvalidInput(f"{what} points to {path}, outside the allowed roots")
    return real


def open_resolved(path: str) -> int:
    """A read-only descriptor of ``path``, a path resolved and checked earlier, if it still
    is that file: not a symbolic link now, nor reached through one.

    Raises OutsideRoots if it is not, OSError if it cannot be opened.
    """
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | _NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the file itself was swapped for a symbolic link
            raise _moved(path) from None
        raise
    try:
        if _real_path(fd, path) != path:
            raise _moved(path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_within(path: str, roots: Sequence[str]) -> int:
    """A read-only descriptor of ``path`` if the file opened lies within ``roots``
    (symbolic links among the roots are fine); OutsideRoots if it does not."""
    fd = os.open(path, os.O_RDONLY | _CLOEXEC | _NONBLOCK)
    try:
        if not is_within(_real_path(fd, path), roots):
            raise OutsideRoots(f"{path} leads outside the allowed roots; it is not served")
    except BaseException:
        os.close(fd)
        raise
    return fd


@overload
def read_at(fd: int, offset: int, length: int) -> bytes | None: ...
@overload
def read_at(
    fd: int, offset: int, length: int, *, cached_only: bool
) -> bytes | bytearray | None: ...
def read_at(
    fd: int, offset: int, length: int, *, cached_only: bool = False
) -> bytes | bytearray | None:
    """``length`` bytes at ``offset`` of the open regular file ``fd``; None if the file is
    shorter now (it changed since it was measured).

    With ``cached_only`` it never waits for a disk: None unless the page cache holds every
    byte, and None where the system cannot tell (no ``RWF_NOWAIT``) or the read fails.
    """
    if not cached_only:
        data = os.pread(fd, length, offset)
        return data if len(data) == length else None
    if _NOWAIT is None:
        return None
    buffer = bytearray(length)
    try:
        got = os.preadv(fd, [buffer], offset, _NOWAIT)
    except OSError:  # BlockingIOError when not cached; the caller reads the usual way
        return None
    return buffer if got == length else None


@overload
def read_resolved(path: str, offset: int, length: int) -> bytes | None: ...
@overload
def read_resolved(
    path: str, offset: int, length: int, *, cached_only: bool
) -> bytes | bytearray | None: ...
def read_resolved(
    path: str, offset: int, length: int, *, cached_only: bool = False
) -> bytes | bytearray | None:
    """``length`` bytes at ``offset`` of the checked file ``path`` (:func:`read_at`); None
    if the file is shorter now (it changed since it was referenced) or no longer a file.

    Raises OutsideRoots if a symbolic link now stands on the path, OSError if it cannot be
    opened.
    """
    fd = open_resolved(path)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return read_at(fd, offset, length, cached_only=cached_only)
    finally:
        os.close(fd)


def _real_path(fd: int, path: str) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        pass
    # No /proc: the descriptor must be the file the path resolves to now.
    real = os.path.realpath(path)
    opened, named = os.fstat(fd), os.stat(real)
    if (opened.st_dev, opened.st_ino) != (named.st_dev, named.st_ino):
        raise _moved(path)
    return real


def _moved(path: str) -> OutsideRoots:
    return OutsideRoots(
        f"{path} is no longer the file that was registered: a symbolic link now stands on "
        "its path, which may lead outside the allowed roots; it is not served"
    )
