"""intake-esgf's Solr index against a real node's ``/esg-search``, offline.

intake-esgf is configured to search only the node on loopback (no Globus, STAC or public
Solr index); its caches, log and download database are in the test's directory. Its
file-info step runs for real: the files of the found datasets are placed under a local
data root, where intake-esgf looks before downloading, so ``to_dataset_dict`` opens them
without the network. Only that step's HTTPS download of missing files is not exercised.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import intake_esgf
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from intake_esgf.projects import projects

from tests.catalog.test_esg_search import Node, node_settings, start_node

# The facets intake-esgf keys CMIP6 records by, as intake-esgf itself defines them: the
# test holds the node's own DRS table to what the client expects, not to a copy of it.
KEY_FACETS = projects["cmip6"].master_id_facets()


@pytest.fixture
def node(tmp_path: Path, serve: Callable[[Any], str]) -> Iterator[Node]:
    yield from start_node(node_settings(tmp_path), serve)


@contextmanager
def only_this_node(node: Node, tmp_path: Path) -> Iterator[Path]:
    """intake-esgf searching ``node`` alone, with every path it writes in ``tmp_path``;
    yields its data root."""
    conf = intake_esgf.conf
    root = tmp_path / "esg_dataroot"
    root.mkdir(parents=True)
    with warnings.catch_warnings():
        # pandas says the option goes away in pandas 4.
        warnings.simplefilter("ignore", DeprecationWarning)
        with (
            # intake-esgf 2025.10 (the last release for Python 3.11) keeps lists of ids
            # in string columns, which pandas 3's str dtype refuses: the object dtype it
            # was written for, as its users on pandas 3 set it.
            pd.option_context("future.infer_string", False),
            conf.set(
                no_indices=True,
                esg_dataroot=[str(root)],
                local_cache=[str(tmp_path / "cache")],
                requests_cache={"backend": "memory", "expire_after": "DO_NOT_CACHE"},
                break_on_error=True,
            ),
        ):
            conf["solr_indices"] = {urlsplit(node.url).netloc: True}
            conf["logfile"] = str(tmp_path / "esgf.log")
            conf["download_db"] = str(tmp_path / "download.db")
            yield root


def catalog(node: Node) -> Any:
    with warnings.catch_warnings():
        # "You have enabled at least one index which uses the old Solr technology."
        warnings.simplefilter("ignore", UserWarning)
        cat = intake_esgf.ESGFCatalog()
    [index] = cat.indices
    # intake-esgf names Solr indices by host and speaks HTTPS to them; this node is plain
    # HTTP on loopback.
    index.url = node.url
    return cat


def cmip6_query(node: Node) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Facets that select a few CMIP6 datasets with few files, and those datasets."""
    latest = [
        it
        for it in node.items
        if it["collection"] == "CMIP6" and it["properties"]["latest"] and len(it["assets"]) <= 3
    ]
    props = latest[0]["properties"]
    query = {
        "variable_id": props["cmip6:variable_id"],
        "table_id": props["cmip6:table_id"],
    }
    expected = [
        it
        for it in node.items
        if it["collection"] == "CMIP6"
        and it["properties"]["latest"]
        and all(it["properties"][f"cmip6:{k}"] == v for k, v in query.items())
    ]
    return query, expected


def test_intake_esgf_finds_the_datasets_of_a_search(node: Node, tmp_path: Path) -> None:
    query, expected = cmip6_query(node)
    with only_this_node(node, tmp_path):
        cat = catalog(node).search(quiet=True, **query)
    df = cat.df
    assert len(df) == len(expected)
    by_id = {it["id"]: it for it in expected}
    found = {row["id"][0].split("|")[0]: row for _, row in df.iterrows()}
    assert set(found) == set(by_id)
    for instance_id, row in found.items():
        # Each column is the value of the dataset's DRS: its id, read by facet.
        drs = instance_id.split(".")
        assert [row[f] for f in KEY_FACETS] == drs[:-1]
        assert row["version"] == drs[-1][1:]
        assert row["project"] == "CMIP6"

    # The DRS's activity is a facet to search by, as on ESGF's index nodes.
    activity = expected[0]["id"].split(".")[1]
    with only_this_node(node, tmp_path / "again"):
        again = catalog(node).search(quiet=True, activity_drs=activity, **query)
    assert {row["id"][0].split("|")[0] for _, row in again.df.iterrows()} == {
        it["id"] for it in expected if it["id"].split(".")[1] == activity
    }


def test_intake_esgf_lists_files_and_opens_them_from_a_local_data_root(
    node: Node, tmp_path: Path
) -> None:
    query, expected = cmip6_query(node)
    with only_this_node(node, tmp_path) as root:
        # The files where ESGF's directory template puts them, as an HPC centre's mirror.
        written: dict[str, list[Path]] = {}
        for item in expected:
            for n, asset in enumerate(sorted(item["assets"].values(), key=lambda a: a["href"])):
                path = root / asset["file:local_path"]
                path.parent.mkdir(parents=True, exist_ok=True)
                variable = item["properties"]["cmip6:variable_id"]
                xr.Dataset(
                    {variable: ("time", np.array([float(n)]))},
                    coords={"time": pd.to_datetime([f"{1850 + n}-01-16"])},
                ).to_netcdf(path)
                written.setdefault(item["id"], []).append(path)

        cat = catalog(node).search(quiet=True, **query)
        paths = cat.to_path_dict(quiet=True, minimal_keys=False)
        datasets = cat.to_dataset_dict(quiet=True, minimal_keys=False, add_measures=False)

    # Keyed by the DRS without the version, as intake-esgf keys datasets.
    keys = {item["properties"]["base_id"]: item["id"] for item in expected}
    assert set(paths) == set(keys)
    for key, files in paths.items():
        assert sorted(Path(f) for f in files) == sorted(written[keys[key]])
    assert set(datasets) == set(keys)
    for key, ds in datasets.items():
        item = next(it for it in expected if it["properties"]["base_id"] == key)
        variable = item["properties"]["cmip6:variable_id"]
        assert ds[variable].size == len(item["assets"])
        assert ds.attrs["source_id"] == item["properties"]["cmip6:source_id"]
