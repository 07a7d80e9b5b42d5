"""Reference files on disk, and the raw store that serves the chunks they point to.

A chunk is read from the original file by byte range, through the confined opener of
:mod:`strato.data.datasets.confine`: never through a symbolic link out of the allowed roots.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from strato.data.datasets.confine import (
    as_root_strings,
    check_path_text,
    read_resolved,
    resolve_within,
)
from strato.data.raw.reference_json import (
    CONSOLIDATED,
    METADATA_NAMES,
    REFERENCE_VERSION,
    dumps,
    fixed_array_meta,
    inline_bytes,
    json_doc,
    normalised,
)
from strato.errors import InvalidInput, NotFound

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_INDEX = re.compile(r"[0-9]+")
_TEMPLATE = re.compile(r"{{\s*([A-Za-z_][A-Za-z0-9_]*)\s*}}")


@dataclass(frozen=True, slots=True)
class ByteRange:
    """``length`` bytes at ``offset`` of the local file ``path``."""

    path: str
    offset: int
    length: int


# --- files ----------------------------------------------------------------------------


def save_references(refs: dict[str, Any], path: Path) -> None:
    """Write ``refs`` as JSON, atomically: readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(refs, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_references(path: Path) -> dict[str, Any]:
    """A reference file (JSON, version 0 or 1), as a version 1 set with templates expanded."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"{path}: no such reference file") from None
    except IsADirectoryError:
        raise InvalidInput(
            f"{path}: a directory; reference sets are read from JSON files (not Parquet)"
        ) from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"{path}: not a JSON reference file ({exc})") from exc
    if not isinstance(doc, dict):
        raise InvalidInput(f"{path}: a reference file holds a JSON object")
    return {"version": REFERENCE_VERSION, "refs": normalised(_expanded(doc, str(path)))}


def _expanded(doc: dict[str, Any], where: str) -> dict[str, Any]:
    """The key -> reference mapping of a version 0 or 1 reference set."""
    if "refs" not in doc and "version" not in doc:
        return doc  # version 0: the mapping itself
    if doc.get("version") != REFERENCE_VERSION or not isinstance(doc.get("refs"), dict):
        raise InvalidInput(
            f"{where}: unsupported reference set; expected {{'version': 1, 'refs': {{...}}}} "
            "or a version 0 mapping of keys to references"
        )
    if doc.get("gen"):
        raise InvalidInput(
            f"{where}: 'gen' entries are not supported; expand them into 'refs' first"
        )
    refs: dict[str, Any] = doc["refs"]
    templates = doc.get("templates") or {}
    if not templates:
        return refs

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in templates:
            raise InvalidInput(f"{where}: template {{{{{name}}}}} is not defined")
        return str(templates[name])

    return {
        key: [_TEMPLATE.sub(fill, v[0]), *v[1:]] if isinstance(v, list) and v else v
        for key, v in refs.items()
    }


def local_path(url: Any, key: str) -> str:
    if not isinstance(url, str):
        raise InvalidInput(f"reference {key!r}: the target must be a file path, not {url!r}")
    scheme = _SCHEME.match(url)
    path = url
    if scheme:
        if scheme.group(1).lower() not in ("file", "local") or "::" in url:
            raise InvalidInput(
                f"reference {key!r} points to {url!r}, which is not a local file; only "
                "absolute local paths and file:// URLs are served"
            )
        path = unquote(urlsplit(url).path)
    if not os.path.isabs(path):
        raise InvalidInput(
            f"reference {key!r} points to {url!r}; targets must be absolute local paths"
        )
    # Not normpath: "lnk/../f" is not "f" when lnk is a symbolic link; RawStore resolves
    # targets the way the kernel does.
    return check_path_text(path, f"reference {key!r}")


def read_range(path: str, offset: int, length: int) -> bytes:
    """``length`` bytes at ``offset`` of a referenced file, read as the server reads chunks
    (:func:`~strato.data.datasets.confine.read_resolved`)."""
    data = read_resolved(os.path.realpath(path), offset, length)
    if data is None:
        raise NotFound(f"{path} changed: {length} bytes expected at offset {offset}")
    return data


# --- serving --------------------------------------------------------------------------


class RawStore:
    """A read-only Zarr v2 store over a reference set: metadata and inline chunks from
    memory, other chunks as byte ranges of local files.

    ``allowed_roots``, if given, confines the files the references may point into.
    """

    def __init__(self, refs: dict[str, Any], *, allowed_roots: Iterable[Path] = ()) -> None:
        mapping = _expanded(refs, "reference set")
        roots = as_root_strings(allowed_roots)
        self._entries: dict[str, bytes | ByteRange] = {}
        self._arrays: dict[str, dict[str, Any]] = {}
        consolidated: dict[str, Any] = {}
        paths: dict[str, str] = {}  # url -> checked local path
        sizes: dict[str, int] = {}
        for key, value in mapping.items():
            name = key.rpartition("/")[2]
            if name == CONSOLIDATED:
                continue  # rebuilt below from the fixed-up documents
            if name in METADATA_NAMES:
                doc = json_doc(value, key)
                if name == ".zarray":
                    doc = fixed_array_meta(doc)
                    self._arrays[key[: -len("/.zarray")]] = doc
                consolidated[key] = doc
                self._entries[key] = dumps(doc).encode()
            elif isinstance(value, str):
                self._entries[key] = inline_bytes(value, key)
            elif isinstance(value, bytes):
                self._entries[key] = value
            elif isinstance(value, list) and len(value) in (1, 3):
                url = value[0]
                if url not in paths:
                    paths[url] = self._checked(local_path(url, key), key, roots, sizes)
                path = paths[url]
                if len(value) == 1:
                    self._entries[key] = ByteRange(path, 0, sizes[path])
                else:
                    offset, length = value[1], value[2]
                    if not (_is_count(offset) and _is_count(length)):
                        raise InvalidInput(
                            f"reference {key!r}: offset and length must be integers >= 0"
                        )
                    self._entries[key] = ByteRange(path, offset, length)
            else:
                raise InvalidInput(
                    f"reference {key!r}: expected [url], [url, offset, length] or inline "
                    "data (text, or base64: followed by base64)"
                )
        if ".zgroup" not in consolidated:
            raise InvalidInput("the reference set has no .zgroup: it is not a Zarr v2 group")
        self._metadata = {"zarr_consolidated_format": 1, "metadata": consolidated}
        self._entries[CONSOLIDATED] = dumps(self._metadata).encode()
        self._files = sorted(sizes)

    @staticmethod
    def _checked(path: str, key: str, roots: list[str], sizes: dict[str, int]) -> str:
        """The target resolved once, as the kernel resolves it, and checked; chunks are
        read from that resolved path only, never through a symbolic link (confine)."""
        real = resolve_within(path, roots, f"reference {key!r}")
        try:
            st = os.stat(real)
        except OSError:
            raise InvalidInput(
                f"reference {key!r} points to {path}, which does not exist"
            ) from None
        if not stat.S_ISREG(st.st_mode):
            raise InvalidInput(f"reference {key!r} points to {path}, which is not a file")
        sizes[real] = st.st_size
        return real

    def metadata(self) -> dict[str, Any]:
        """The consolidated ``.zmetadata`` document."""
        doc: dict[str, Any] = json.loads(dumps(self._metadata))  # a copy callers may change
        return doc

    def array_metadata(self, name: str) -> dict[str, Any]:
        """The (fixed-up) ``.zarray`` document of one array."""
        try:
            return dict(self._arrays[name])
        except KeyError:
            raise NotFound(f"no variable {name!r}; variables are {self._names()}") from None

    def resolve(self, key: str) -> bytes | ByteRange:
        """What a key holds: bytes from memory, or where to read them."""
        try:
            return self._entries[key]
        except KeyError:
            raise self._missing(key) from None

    def entry(self, key: str) -> bytes | ByteRange | None:
        """What :meth:`resolve` returns, or None for a key the store does not hold."""
        return self._entries.get(key)

    def read(self, key: str) -> bytes:
        target = self.resolve(key)
        if isinstance(target, bytes):
            return target
        # Never through a symbolic link put on the path since the references were checked.
        data = read_resolved(target.path, target.offset, target.length)
        if data is None:  # said without the server's path: this reaches clients
            raise NotFound(
                f"the source file changed: {target.length} bytes expected at {target.offset}"
            )
        return data

    def keys(self) -> list[str]:
        return list(self._entries)

    def variables(self) -> list[str]:
        return sorted(self._arrays)

    def files(self) -> list[str]:
        return list(self._files)

    def _names(self) -> str:
        names = self.variables()
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        return shown or "none"

    def _missing(self, key: str) -> InvalidInput | NotFound:
        """Why a key is not in the store; only runs for keys that are not."""
        array = max((a for a in self._arrays if key.startswith(a + "/")), key=len, default=None)
        if array is None:
            head = key.partition("/")[0]
            if head in METADATA_NAMES or head == CONSOLIDATED or "/" not in key:
                return NotFound(f"{key}: no such key; variables are {self._names()}")
            return NotFound(f"{key}: no variable {head!r}; variables are {self._names()}")
        meta = self._arrays[array]
        rest = key[len(array) + 1 :]
        if rest in METADATA_NAMES:
            return NotFound(f"{key}: no such metadata document")
        shape, chunks = list(meta["shape"]), list(meta["chunks"])
        sep = meta.get("dimension_separator") or "."
        ndim = max(len(shape), 1)
        parts = rest.split(sep)
        if len(parts) != ndim or not all(_INDEX.fullmatch(p) for p in parts):
            sep_name = "dot" if sep == "." else "slash"
            example = f"{array}/{sep.join('0' * ndim)}"
            return InvalidInput(
                f"{key}: a chunk key of {array!r} is {ndim} {sep_name}-separated chunk "
                f"indices, e.g. {example}"
            )
        grid = [math.ceil(n / c) if c else 0 for n, c in zip(shape, chunks, strict=False)] or [1]
        if any(int(p) >= g for p, g in zip(parts, grid, strict=True)):
            return NotFound(
                f"{key}: outside the chunk grid of {array!r} ({' x '.join(map(str, grid))} chunks)"
            )
        return NotFound(
            f"{key}: chunk not stored in the source file; readers use the fill value "
            f"({meta.get('fill_value')!r})"
        )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
