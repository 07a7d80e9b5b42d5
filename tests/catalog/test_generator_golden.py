"""The generator's output for a seed is fixed: the same items and collections, byte for byte.

Benchmarks, the playground and other nodes' demo data all regenerate from a seed and
expect to get what they got before; moving the vocabularies from Python literals to data
files must not change a single value or the order the generator draws in. When the
generator is changed on purpose, these digests change with it (print them from
``_digest`` and say why in the commit).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from strato.catalog.demo.generated_collections import collection_for
from strato.catalog.demo.generator import Project, generate_items

GOLDEN: dict[str, tuple[str, str]] = {
    # project: (2000 items with seed 11, the project's collection)
    "CMIP6": (
        "4b94e0894e4cfa04f838aee4a7c5e24a253b58a3de910b0da01bd0f46576a43e",
        "ee511d543857beed1ae64faa243d751f99c826d624fb2a704c125199e34ccdbc",
    ),
    "CORDEX": (
        "fd1cd9623f7525b6519bc7a53fcc4af5b319ab7200b42d6247315f02145b465b",
        "c9a6344cf6b528abae7fbf0b1009ce3c3e9e31f2bc6eadaa4167071024e4a8ad",
    ),
}


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("project", sorted(GOLDEN))
def test_same_seed_gives_the_same_items_as_before(project: Project) -> None:
    items, collection = GOLDEN[project]
    assert _digest(list(generate_items(2000, project=project, seed=11))) == items
    assert _digest(collection_for(project)) == collection
