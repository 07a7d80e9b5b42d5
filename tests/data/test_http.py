"""strato.data over real HTTP with the clients users have: xarray/zarr, intake, pystac."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import xarray as xr

from strato.app import create_app
from strato.auth import Scope
from strato.bootstrap import ensure_admin
from strato.context import Context
from strato.data.settings import DataSettings
from strato.settings import LogSettings, Settings
from tests.helpers import assert_problem


class Node:
    """A running strato with an admin token, serving files under ``root``."""

    def __init__(self, url: str, token: str, root: Path, context: Context) -> None:
        self.url = url
        self.root = root
        self.context = context
        self.auth = {"Authorization": f"Bearer {token}"}
        self.http = httpx.Client(base_url=url, timeout=60)

    def register(self, dataset_id: str, sources: list[str], **extra: Any) -> httpx.Response:
        body = {"id": dataset_id, "sources": sources, **extra}
        return self.http.post("/api/datasets", json=body, headers=self.auth)

    def open(self, dataset_id: str, store: str = "zarr", **kwargs: Any) -> xr.Dataset:
        return xr.open_dataset(
            f"{self.url}/datasets/{dataset_id}/{store}/", engine="zarr", **kwargs
        )


def make_node(tmp_path: Path, serve: Callable[[Any], str], **data: Any) -> Iterator[Node]:
    settings = Settings(
        data_dir=tmp_path / "state",
        log=LogSettings(access=False),
        data=DataSettings(allowed_roots=[tmp_path], **data),
        cors_origins=["https://viewer.example"],
    )
    ctx = Context.open(settings)
    ctx.migrate()
    issued = ensure_admin(ctx.identities, settings)
    assert issued is not None
    node = Node(serve(create_app(settings, context=ctx)), issued.secret, tmp_path, ctx)
    yield node
    node.http.close()
    ctx.close()


@pytest.fixture
def node(tmp_path: Path, serve: Callable[[Any], str]) -> Iterator[Node]:
    yield from make_node(tmp_path, serve)


@pytest.fixture
def served(node: Node, netcdf_file: Path) -> Node:
    r = node.register("one", [str(netcdf_file)], title="One file")
    assert r.status_code == 201, r.text
    return node


def assert_same_data(served: xr.Dataset, source: xr.Dataset) -> None:
    xr.testing.assert_equal(served, source)
    for name, var in source.variables.items():
        for attr in ("units", "long_name", "standard_name"):
            assert served[name].attrs.get(attr) == var.attrs.get(attr), (name, attr)


# --- values -----------------------------------------------------------------------------


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_processed_zarr_returns_exactly_the_source_values(
    served: Node, netcdf_file: Path, zarr_format: int
) -> None:
    with xr.open_dataset(netcdf_file) as source:
        remote = served.open("one", zarr_format=zarr_format)
        assert_same_data(remote, source)
        assert remote.sst.dtype == source.sst.dtype  # unpacked float, as from the file
        assert int(remote.pr.isnull().sum()) == int(source.pr.isnull().sum()) > 0


def test_raw_passthrough_returns_exactly_the_source_values(served: Node, netcdf_file: Path) -> None:
    with xr.open_dataset(netcdf_file) as source:
        assert_same_data(served.open("one", "kerchunk", zarr_format=2), source)


def test_glob_of_yearly_files_is_one_dataset(node: Node, netcdf_yearly_files: list[Path]) -> None:
    pattern = str(netcdf_yearly_files[0].parent / "tas_mon_*.nc")
    assert node.register("yearly", [pattern], chunks={"time": 5}).status_code == 201
    with xr.open_mfdataset(netcdf_yearly_files, combine="nested", concat_dim="time") as source:
        source = source.load()
        for store, fmt in (("zarr", 2), ("zarr", 3), ("kerchunk", 2)):
            assert_same_data(node.open("yearly", store, zarr_format=fmt), source)
    meta = node.http.get("/datasets/yearly/zarr/tas/.zarray").json()
    assert meta["chunks"][0] == 5


# --- HTTP behaviour -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "zarr/.zmetadata",
        "zarr/zarr.json",
        "zarr/tas/0.0.0",
        "zarr/tas/c/0/0/0",
        "kerchunk/.zmetadata",
        "kerchunk/tas/0.0.0",
    ],
)
def test_head_etag_and_conditional_get(served: Node, key: str) -> None:
    url = f"/datasets/one/{key}"
    got = served.http.get(url)
    assert got.status_code == 200
    assert int(got.headers["content-length"]) == len(got.content) > 0
    head = served.http.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == got.headers["content-length"]
    assert head.content == b""
    assert head.headers["etag"] == got.headers["etag"]
    assert got.headers["cache-control"] == "public, max-age=300"
    assert "last-modified" in got.headers
    again = served.http.get(url, headers={"If-None-Match": got.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


def test_cors_lets_a_browser_viewer_read_chunks(served: Node) -> None:
    r = served.http.get(
        "/datasets/one/zarr/.zmetadata", headers={"Origin": "https://viewer.example"}
    )
    assert r.headers["access-control-allow-origin"] == "https://viewer.example"


def test_dataset_reopens_when_its_file_changes(served: Node, netcdf_file: Path) -> None:
    first = served.open("one").tas.values.copy()
    with xr.open_dataset(netcdf_file) as ds:
        changed = ds.load()
    changed["tas"] = changed.tas + 1.5
    changed.to_netcdf(netcdf_file.with_suffix(".tmp"))
    os.replace(netcdf_file.with_suffix(".tmp"), netcdf_file)
    time.sleep(1.1)  # the cache rechecks files at most once a second
    second = served.open("one").tas.values
    np.testing.assert_allclose(second, first + 1.5, rtol=1e-6)


def test_broken_source_is_reported_and_others_keep_serving(
    served: Node, netcdf_file: Path, tmp_path: Path
) -> None:
    spare = tmp_path / "spare.nc"
    shutil.copy(netcdf_file, spare)
    assert served.register("two", [str(spare)]).status_code == 201
    spare.write_bytes(b"this is no longer a netcdf file")
    time.sleep(1.1)
    states = {d["id"]: d for d in served.http.get("/api/datasets").json()}
    assert states["two"]["state"] == "broken"
    assert states["two"]["reason"]
    assert states["one"]["state"] == "ok"
    assert_problem(served.http.get("/datasets/two/zarr/.zmetadata"), 503, "broken")
    assert served.http.get("/datasets/one/zarr/.zmetadata").status_code == 200


# --- catalogs -----------------------------------------------------------------------------


def test_stac_item_and_collection_point_to_working_endpoints(served: Node) -> None:
    import pystac

    item = pystac.Item.from_file(f"{served.url}/datasets/one/stac")
    assert {"zarr", "kerchunk", "source"} <= set(item.assets)
    assert any("datacube" in e for e in item.stac_extensions)
    assert "tas" in item.properties["cube:variables"]
    assert item.properties["cube:dimensions"]["time"]["type"] == "temporal"
    for name in ("zarr", "kerchunk"):
        asset = item.assets[name]
        ds = xr.open_dataset(asset.href, **asset.extra_fields["xarray:open_kwargs"])
        assert "tas" in ds
    collection = pystac.Collection.from_file(f"{served.url}/stac-collection-all.json")
    assert [i.id for i in collection.get_items()] == ["one"]


def test_intake_catalogs_load_the_dataset(served: Node, netcdf_file: Path) -> None:
    import intake

    for url in (f"{served.url}/intake.yaml", f"{served.url}/datasets/one/catalog.yaml"):
        cat = intake.open_catalog(url)
        ds = cat["one"].to_dask()
        with xr.open_dataset(netcdf_file) as source:
            xr.testing.assert_equal(ds.tas.load(), source.tas)


def test_xpublish_compatible_endpoints(served: Node) -> None:
    assert served.http.get("/datasets").json() == ["one"]
    assert set(served.http.get("/datasets/one/keys").json()) >= {"tas", "pr", "sst", "time"}
    info = served.http.get("/datasets/one/info").json()
    assert info["dimensions"] == {"time": 24, "lat": 18, "lon": 36}
    assert info["variables"]["tas"]["attributes"]["units"] == "K"
    assert "coords" in served.http.get("/datasets/one/dict").json()
    page = served.http.get("/datasets/one/")
    assert page.headers["content-type"].startswith("text/html")
    assert "xr-wrap" in page.text


# --- plots and diagnostics ----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "tas/map/viridis/time=2001-06",
        "tas/timeseries/viridis/lat=-30:30",
        "pr/hovmoller/Blues/all",
        "sst/map/RdBu_r/time=2000-01,lat=-45:45,lon=0:180",
    ],
)
def test_plots_are_pngs(served: Node, path: str) -> None:
    r = served.http.get(f"/datasets/one/plot/{path}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.content.startswith(b"\x89PNG\r\n\x1a\n")


def test_monthly_climatology_opens_as_zarr_and_netcdf(
    served: Node, netcdf_file: Path, tmp_path: Path
) -> None:
    base = "/datasets/one/groupby/tas/time.month/mean"
    summary = served.http.get(base).json()
    assert summary["dimensions"]["month"] == 12
    with xr.open_dataset(netcdf_file) as source:
        expected = source.tas.groupby("time.month").mean()
    for fmt in (2, 3):
        remote = xr.open_dataset(f"{served.url}{base}/zarr/", engine="zarr", zarr_format=fmt)
        np.testing.assert_allclose(remote.tas.values, expected.values, rtol=1e-6)
        assert remote.tas.attrs["units"] == "K"
    nc = served.http.get(base, params={"format": "netcdf"})
    assert nc.status_code == 200
    path = tmp_path / "clim.nc"
    path.write_bytes(nc.content)
    with xr.open_dataset(path) as downloaded:
        np.testing.assert_allclose(downloaded.tas.values, expected.values, rtol=1e-6)


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "text"),
    [
        ("/datasets/nope/zarr/.zmetadata", 404, "nope"),
        ("/datasets/one/zarr/nothere/.zarray", 404, "nothere"),
        ("/datasets/one/zarr/tas/0.0", 400, "tas/"),
        ("/datasets/one/zarr/tas/x.y.z", 400, "tas/"),
        ("/datasets/one/zarr/tas/99.0.0", 404, ""),
        ("/datasets/one/kerchunk/tas/0.0", 400, ""),
        ("/datasets/one/plot/tas/map/notacmap/all", 400, "colormap"),
        ("/datasets/one/plot/tas/pie/viridis/all", 400, "map"),
        ("/datasets/one/plot/tas/map/viridis/time=", 400, "time=2001-06"),
        ("/datasets/one/plot/tas/map/viridis/depth=3", 400, "depth"),
        ("/datasets/one/plot/nope/map/viridis/all", 404, "nope"),
        ("/datasets/one/groupby/tas/time.week/mean", 400, "time.month"),
        ("/datasets/one/groupby/tas/time.month/median", 400, "mean"),
    ],
)
def test_bad_requests_are_4xx_problems(served: Node, path: str, status: int, text: str) -> None:
    assert_problem(served.http.get(path), status, text)


def test_byte_budget_answers_413(
    tmp_path: Path, serve: Callable[[Any], str], netcdf_file: Path
) -> None:
    for node in make_node(tmp_path, serve, byte_budget=1000):
        assert node.register("one", [str(netcdf_file)]).status_code == 201
        body = assert_problem(node.http.get("/datasets/one/plot/tas/timeseries/viridis/all"), 413)
        assert "1000" in body["detail"]
        assert_problem(node.http.get("/datasets/one/groupby/tas/time.month/mean"), 413)


def test_registration_is_authenticated_and_validated(
    node: Node, netcdf_file: Path, tmp_path: Path
) -> None:
    body = {"id": "x", "sources": [str(netcdf_file)]}
    assert_problem(node.http.post("/api/datasets", json=body), 401)
    reader = node.context.identities
    reader.create_user("reader", scopes={Scope.READ})
    token = reader.create_token("reader", {Scope.READ}).secret
    assert_problem(
        node.http.post("/api/datasets", json=body, headers={"Authorization": f"Bearer {token}"}),
        403,
    )
    outside = tmp_path.parent / "elsewhere.nc"
    assert_problem(node.register("x", [str(outside)]), 400, "outside the allowed roots")
    assert_problem(node.register("x", ["/etc/passwd"]), 400, "outside the allowed roots")
    assert_problem(node.register("x", [str(tmp_path / "missing-*.nc")]), 400, "matches no file")
    assert_problem(node.register("bad id!", [str(netcdf_file)]), 400, "invalid dataset id")
    assert_problem(node.register("x", [str(netcdf_file)], chunks={"depth": 3}), 400, "depth")
    junk = tmp_path / "junk.nc"
    junk.write_text("not netcdf")
    assert_problem(node.register("x", [str(junk)]), 400, "cannot serve")
    assert node.http.get("/datasets").json() == []
    assert node.register("x", [str(netcdf_file)]).status_code == 201
    assert_problem(node.register("x", [str(netcdf_file)]), 409, "already registered")
    assert node.http.delete("/api/datasets/x", headers=node.auth).status_code == 204
    assert_problem(node.http.get("/datasets/x/zarr/.zmetadata"), 404)


# --- other kinds of source ----------------------------------------------------------------


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_a_zarr_store_is_served(
    node: Node, netcdf_file: Path, tmp_path: Path, zarr_format: int
) -> None:
    store = tmp_path / f"store-v{zarr_format}.zarr"
    with xr.open_dataset(netcdf_file) as source:
        source.to_zarr(store, zarr_format=zarr_format)
        assert node.register("z", [str(store)]).status_code == 201
        for fmt in (2, 3):
            xr.testing.assert_equal(node.open("z", zarr_format=fmt), source)
    # Raw passthrough is for NetCDF/HDF5 files; a Zarr store says so instead of failing.
    assert_problem(node.http.get("/datasets/z/kerchunk/.zmetadata"), 404, "raw passthrough")


def test_a_kerchunk_reference_file_is_served(node: Node, netcdf_file: Path, tmp_path: Path) -> None:
    from strato.data.raw.raw_store import save_references
    from strato.data.raw.references import build_references

    refs = tmp_path / "refs.json"
    save_references(build_references([netcdf_file]), refs)
    assert node.register("refs", [str(refs)]).status_code == 201
    with xr.open_dataset(netcdf_file) as source:
        for store in ("zarr", "kerchunk"):
            assert_same_data(node.open("refs", store, zarr_format=2), source)


def test_a_netcdf3_file_is_served(node: Node, netcdf3_file: Path) -> None:
    assert node.register("classic", [str(netcdf3_file)]).status_code == 201
    with xr.open_dataset(netcdf3_file) as source:
        assert_same_data(node.open("classic", zarr_format=3), source)
        assert_same_data(node.open("classic", "kerchunk", zarr_format=2), source)


def test_diagnostics_run_on_a_dask_cluster(
    tmp_path: Path, serve: Callable[[Any], str], netcdf_file: Path
) -> None:
    from distributed import LocalCluster

    from strato.data.datasets.compute import release_dask

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        settings = Settings(
            data_dir=tmp_path / "state",
            log=LogSettings(access=False),
            data=DataSettings(allowed_roots=[tmp_path]),
            dask_scheduler=cluster.scheduler_address,
        )
        ctx = Context.open(settings)
        ctx.migrate()
        try:
            from strato.data.service import DataService

            DataService(ctx.sessions, settings).register("one", [str(netcdf_file)])
            url = serve(create_app(settings, context=ctx))
            r = httpx.get(f"{url}/datasets/one/groupby/tas/time.season/max", timeout=60)
            assert r.status_code == 200, r.text
            assert r.json()["dimensions"]["season"] == 4
            # The work ran on the cluster's worker, not in the web server's threads.
            [worker] = cluster.workers.values()
            assert worker.state.executed_count > 0
        finally:
            release_dask()
            ctx.close()


def test_demo_collection_reads_back_exactly_through_every_store(node: Node) -> None:
    from strato.data.demo.collection import generate_demo
    from strato.data.demo.ensure import ensure_demo
    from strato.data.service import DataService

    service = DataService(node.context.sessions, node.context.settings)
    added = ensure_demo(service, scale="small")
    service.close()
    assert len(added) == 3
    combine = {
        "combine": "nested",
        "concat_dim": "time",
        "data_vars": "minimal",
        "coords": "minimal",
        "compat": "override",
    }
    for demo in generate_demo(node.context.settings.data_dir / "demo", scale="small"):
        with xr.open_mfdataset(demo.paths, **combine) as source:
            var = next(str(v) for v in source.data_vars if "bnds" not in str(v))
            expected = source[var].load()
        for store, fmt in (("zarr", 3), ("zarr", 2), ("kerchunk", 2)):
            served = node.open(demo.id, store, zarr_format=fmt)[var]
            assert served.dtype == expected.dtype, (demo.id, store)
            np.testing.assert_array_equal(
                served.values, expected.values, err_msg=f"{demo.id} {store}"
            )


def test_a_reference_file_cannot_reach_outside_the_allowed_roots(
    node: Node, netcdf_file: Path, tmp_path: Path
) -> None:
    import json

    from strato.data.raw.references import build_references

    refs = build_references([netcdf_file])
    # Point one chunk at a file outside the roots, as a malicious publisher might.
    key = next(
        k for k in refs["refs"] if k.startswith("tas/") and not k.endswith((".zarray", ".zattrs"))
    )
    refs["refs"][key] = ["/etc/hostname", 0, 4]
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(refs))
    assert_problem(node.register("evil", [str(path)]), 400, "outside")


def test_codec_is_blosc_lz4_by_default_and_configurable(
    served: Node, tmp_path: Path, serve: Callable[[Any], str], netcdf_file: Path
) -> None:
    meta = served.http.get("/datasets/one/zarr/tas/.zarray").json()
    assert meta["compressor"]["id"] == "blosc"
    assert meta["compressor"]["cname"] == "lz4"
    other = tmp_path / "other"
    other.mkdir()
    copy = Path(shutil.copy(netcdf_file, other / netcdf_file.name))
    for node in make_node(other, serve, compression="zstd"):
        assert node.register("one", [str(copy)]).status_code == 201
        assert node.http.get("/datasets/one/zarr/tas/.zarray").json()["compressor"]["id"] == "zstd"
        with xr.open_dataset(netcdf_file) as source:
            assert_same_data(node.open("one", zarr_format=3), source)


def test_references_cached_by_an_older_build_are_rebuilt(
    node: Node, netcdf_file: Path, tmp_path: Path
) -> None:
    """An upgrade that changes what build_references writes must not keep serving the old file."""
    from strato.data.datasets.sources import fingerprint
    from strato.data.raw.raw_store import save_references
    from strato.data.raw.references import build_references

    digest, _ = fingerprint([netcdf_file])
    stale = build_references([netcdf_file])
    text = stale["refs"]["tas/.zattrs"]
    stale["refs"]["tas/.zattrs"] = text.replace('"units":"K"', '"units":"stale-build"')
    assert stale["refs"]["tas/.zattrs"] != text
    # Where a build before generations cached this dataset's references, as a node that
    # served it before an upgrade has them on disk.
    save_references(stale, tmp_path / "state" / "references" / f"one.{digest}.json")

    assert node.register("one", [str(netcdf_file)]).status_code == 201
    with xr.open_dataset(netcdf_file) as source:
        assert_same_data(node.open("one", "kerchunk", zarr_format=2), source)
