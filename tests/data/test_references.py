"""Kerchunk references and the raw byte-range store, read back with xarray + zarr 3."""

from __future__ import annotations

import http.server
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import pytest
import xarray as xr

from strato.data.raw.raw_store import ByteRange, RawStore, load_references, save_references
from strato.data.raw.references import build_references
from strato.errors import InvalidInput, NotFound
from tests.data.conftest import cf_dataset, cf_encoding
from tests.data.key_store import KeyStore


def open_raw(refs: dict[str, Any], **kwargs: Any) -> xr.Dataset:
    raw = RawStore(refs)
    store = KeyStore(raw.read, raw.keys)
    return xr.open_dataset(store, engine="zarr", zarr_format=2, consolidated=True, **kwargs)


def assert_same_as_source(served: xr.Dataset, source: xr.Dataset) -> None:
    served, source = served.load(), source.load()
    xr.testing.assert_identical(served, source)
    for name in source.variables:
        assert served[name].dtype == source[name].dtype, name
        for key in ("units", "calendar", "scale_factor", "add_offset"):
            assert served[name].encoding.get(key) == source[name].encoding.get(key), (name, key)


# --- values -----------------------------------------------------------------------------


def test_netcdf4_file_reads_back_identical_to_the_source(netcdf_file: Path) -> None:
    refs = build_references([netcdf_file])
    assert refs["version"] == 1
    with xr.open_dataset(netcdf_file) as source, open_raw(refs) as served:
        assert_same_as_source(served, source)
        # Packed int16 with scale/offset decodes to the same floats, from the same ints.
        assert served.sst.encoding["dtype"] == np.dtype("int16")
        np.testing.assert_array_equal(served.sst.values, source.sst.values)
        # _FillValue 1e20 comes back as NaN, exactly where the source has it.
        assert int(served.pr.isnull().sum()) == int(source.pr.isnull().sum()) == 24 * 5
        assert served.time.values[0] == np.datetime64("2000-01-01")
        assert served.attrs["source_id"] == "TEST-1"
        assert served.tas.attrs["cell_methods"] == "area: time: mean"


def test_decode_cf_false_gives_the_stored_values(netcdf_file: Path) -> None:
    refs = build_references([netcdf_file])
    with (
        xr.open_dataset(netcdf_file, decode_cf=False) as source,
        open_raw(refs, decode_cf=False) as served,
    ):
        assert served.sst.dtype == np.dtype("int16")
        np.testing.assert_array_equal(served.sst.values, source.sst.values)
        np.testing.assert_array_equal(served.time.values, source.time.values)
        assert served.time.attrs["units"] == "days since 1850-01-01"


def test_yearly_files_combine_along_time_like_open_mfdataset(
    netcdf_yearly_files: list[Path],
) -> None:
    # Given out of order: the references follow time, not the argument order.
    refs = build_references(netcdf_yearly_files[::-1], concat_dim="time")
    served_files = RawStore(refs).files()
    assert served_files == [str(p) for p in netcdf_yearly_files]
    with (
        xr.open_mfdataset(netcdf_yearly_files, combine="nested", concat_dim="time") as source,
        open_raw(refs) as served,
    ):
        assert served.sizes["time"] == 36
        assert_same_as_source(served, source)
        assert str(served.time.values[12])[:10] == "2001-01-01"
        assert served.time.encoding["dtype"] == np.dtype("float64")


def test_yearly_files_with_different_time_units_are_reencoded(tmp_path: Path) -> None:
    paths = []
    for year, units in ((2000, "days since 1850-01-01"), (2001, "hours since 2001-01-01")):
        ds = cf_dataset(start=f"{year}-01-01", months=12)
        enc = cf_encoding(ds)
        enc["time"]["units"] = units
        paths.append(tmp_path / f"tas_{year}.nc")
        ds.to_netcdf(paths[-1], encoding=enc)
    refs = build_references(paths)
    with (
        xr.open_mfdataset(paths, combine="nested", concat_dim="time") as source,
        open_raw(refs) as served,
    ):
        xr.testing.assert_identical(served.load(), source.load())
        assert served.time.encoding["units"] == "days since 1850-01-01"


def test_netcdf3_file_reads_back_identical_to_the_source(netcdf3_file: Path) -> None:
    refs = build_references([netcdf3_file])
    store = RawStore(refs)
    assert json.loads(store.read("sst/.zattrs"))["scale_factor"] == 0.01  # a number, not "0.01"
    with xr.open_dataset(netcdf3_file) as source, open_raw(refs) as served:
        assert_same_as_source(served, source)
        assert int(served.pr.isnull().sum()) == int(source.pr.isnull().sum()) > 0


def test_netcdf3_record_variables_and_attributes(tmp_path: Path) -> None:
    ds = cf_dataset(months=4, nlat=3, nlon=4)
    ds["tas"].attrs["valid_range"] = np.array([150.0, 350.0], dtype="float32")
    ds["flag"] = (("lat",), np.array([1, 0, -1], "int8"), {"missing_value": np.int8(-1)})
    ds.attrs["realization"] = np.int32(3)
    path = tmp_path / "records.nc"
    ds.to_netcdf(path, format="NETCDF3_CLASSIC", unlimited_dims=["time"])
    refs = build_references([path])
    with xr.open_dataset(path) as source, open_raw(refs) as served:
        assert_same_as_source(served, source)
        assert served.attrs["realization"] == 3
        assert served.tas.attrs["valid_range"] == pytest.approx([150.0, 350.0])
        assert np.isnan(served.flag.values[2])


# --- raw bytes ------------------------------------------------------------------------------


def test_chunk_bytes_are_the_compressed_bytes_of_the_file(netcdf_file: Path) -> None:
    store = RawStore(build_references([netcdf_file]))
    target = store.resolve("tas/3.0.0")
    assert isinstance(target, ByteRange)
    assert target.path == str(netcdf_file.resolve())
    chunk = store.read("tas/3.0.0")
    with netcdf_file.open("rb") as f:
        f.seek(target.offset)
        assert chunk == f.read(target.length)
    # What a zarr client does with it, by hand: zlib, then unshuffle, per .zarray.
    meta = json.loads(store.read("tas/.zarray"))
    assert meta["compressor"] is None
    assert [f["id"] for f in meta["filters"]] == ["shuffle", "zlib"]
    raw = numcodecs.Zlib().decode(chunk)
    values = np.frombuffer(numcodecs.Shuffle(elementsize=4).decode(raw), dtype="<f4")
    with xr.open_dataset(netcdf_file) as source:
        np.testing.assert_array_equal(values.reshape(18, 36), source.tas.values[3])
    assert len(chunk) < values.nbytes  # sent compressed, as stored


def test_coordinates_are_inline_and_metadata_is_consolidated(netcdf_file: Path) -> None:
    store = RawStore(build_references([netcdf_file]))
    for key in ("time/0", "lat/0", "lon/0"):
        assert isinstance(store.resolve(key), bytes)
    assert np.frombuffer(store.read("lat/0"), "<f8")[0] == pytest.approx(-85.0)
    meta = store.metadata()
    assert meta["zarr_consolidated_format"] == 1
    assert json.loads(store.read(".zmetadata")) == meta
    docs = meta["metadata"]
    assert docs["sst/.zarray"]["dtype"] == "<i2"
    assert docs["sst/.zarray"]["fill_value"] == -32767
    assert docs["sst/.zattrs"]["_ARRAY_DIMENSIONS"] == ["time", "lat", "lon"]
    assert docs["tas/.zarray"]["fill_value"] == "NaN"
    assert store.variables() == ["lat", "lon", "pr", "sst", "tas", "time"]
    assert store.files() == [str(netcdf_file.resolve())]


def test_large_coordinates_are_inlined_from_the_file_bytes(tmp_path: Path) -> None:
    # 3600 longitudes: 28 KiB, far above kerchunk's inline threshold.
    ds = cf_dataset(months=1, nlat=2, nlon=3600)
    path = tmp_path / "fine.nc"
    ds.to_netcdf(path)
    store = RawStore(build_references([path]))
    lon = store.resolve("lon/0")
    assert isinstance(lon, bytes)
    np.testing.assert_array_equal(np.frombuffer(lon, "<f8"), ds.lon.values)
    assert isinstance(store.resolve("tas/0.0.0"), ByteRange)


def test_every_reference_form_resolves(tmp_path: Path) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)))
    refs = {
        "version": 1,
        "templates": {"u": str(blob)},
        "refs": {
            ".zgroup": '{"zarr_format":2}',
            "a/.zarray": json.dumps(
                {
                    "shape": [4],
                    "chunks": [1],
                    "dtype": "|u1",
                    "fill_value": None,
                    "order": "C",
                    "compressor": None,
                    "filters": [],
                    "zarr_format": 2,
                }
            ),
            "a/.zattrs": '{"_ARRAY_DIMENSIONS":["x"]}',
            "a/0": [str(blob), 10, 1],
            "a/1": ["{{u}}", 20, 1],
            "a/2": "base64:" + "Hg==",  # 30
            "a/3": "(",  # plain text: 40
            "whole": [f"file://{blob}"],
        },
    }
    store = RawStore(refs)
    assert store.resolve("a/0") == ByteRange(str(blob), 10, 1)
    assert store.resolve("whole") == ByteRange(str(blob), 0, 256)
    assert store.read("whole") == blob.read_bytes()
    assert json.loads(store.read("a/.zarray"))["filters"] is None
    with open_raw(refs) as ds:
        assert ds.a.values.tolist() == [10, 20, 30, 40]


# --- files ------------------------------------------------------------------------------


def test_save_and_load_round_trip(netcdf_file: Path, tmp_path: Path) -> None:
    refs = build_references([netcdf_file])
    path = tmp_path / "refs" / "one.json"
    save_references(refs, path)
    assert load_references(path) == refs
    assert [p.name for p in path.parent.iterdir()] == ["one.json"]  # no temp file left
    with xr.open_dataset(netcdf_file) as source, open_raw(load_references(path)) as served:
        assert_same_as_source(served, source)


def test_load_accepts_version_0_and_refuses_gen(tmp_path: Path, netcdf_file: Path) -> None:
    v0 = tmp_path / "v0.json"
    v0.write_text(json.dumps(build_references([netcdf_file])["refs"]))
    assert RawStore(load_references(v0)).read("tas/0.0.0")
    gen = tmp_path / "gen.json"
    gen.write_text(json.dumps({"version": 1, "refs": {}, "gen": [{"key": "x"}]}))
    with pytest.raises(InvalidInput, match="gen"):
        load_references(gen)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InvalidInput, match="not a JSON reference file"):
        load_references(tmp_path / "bad.json")
    with pytest.raises(NotFound):
        load_references(tmp_path / "missing.json")


# --- errors -----------------------------------------------------------------------------


@pytest.fixture
def store(netcdf_file: Path) -> RawStore:
    return RawStore(build_references([netcdf_file]))


@pytest.mark.parametrize(
    ("key", "error", "says"),
    [
        ("nope/0.0.0", NotFound, "no variable 'nope'"),
        ("nope", NotFound, "variables are lat, lon"),
        ("tas/0.0", InvalidInput, "3 dot-separated chunk indices, e.g. tas/0.0.0"),
        ("tas/0.x.0", InvalidInput, "3 dot-separated chunk indices"),
        ("tas/-1.0.0", InvalidInput, "3 dot-separated chunk indices"),
        ("time/0.0", InvalidInput, "1 dot-separated chunk indices, e.g. time/0"),
        ("tas/24.0.0", NotFound, r"outside the chunk grid of 'tas' \(24 x 1 x 1 chunks\)"),
        ("tas/.zarr", InvalidInput, "chunk indices"),
    ],
)
def test_bad_keys_say_what_is_wrong(store: RawStore, key: str, error: type, says: str) -> None:
    with pytest.raises(error, match=says):
        store.resolve(key)


def test_chunk_missing_from_the_refs_is_not_found(netcdf_file: Path) -> None:
    refs = build_references([netcdf_file])
    del refs["refs"]["tas/3.0.0"]
    with pytest.raises(NotFound, match="readers use the fill value"):
        RawStore(refs).resolve("tas/3.0.0")


def test_non_netcdf_file_is_invalid_input(tmp_path: Path) -> None:
    path = tmp_path / "notes.nc"
    path.write_text("these are not data\n")
    with pytest.raises(InvalidInput, match=re.escape(f"{path}: not a NetCDF or HDF5 file")):
        build_references([path])
    with pytest.raises(NotFound, match="no such file"):
        build_references([tmp_path / "absent.nc"])


@pytest.mark.parametrize("url", ["s3://bucket/tas.nc", "https://example.org/tas.nc", "tas.nc"])
def test_remote_or_relative_targets_are_refused(netcdf_file: Path, url: str) -> None:
    refs = build_references([netcdf_file])
    refs["refs"]["tas/3.0.0"] = [url, 0, 100]
    with pytest.raises(InvalidInput, match=r"tas/3\.0\.0"):
        RawStore(refs)


def test_targets_outside_allowed_roots_are_refused(netcdf_file: Path, tmp_path: Path) -> None:
    refs = build_references([netcdf_file])
    assert RawStore(refs, allowed_roots=[tmp_path]).files()
    with pytest.raises(InvalidInput, match="outside the allowed roots"):
        RawStore(refs, allowed_roots=[tmp_path / "elsewhere"])


@pytest.mark.parametrize(
    ("chunks", "says"),
    [
        ((5, 6), r"'pr' has chunks \[6, 18, 36\], .* has \[5, 18, 36\]"),
        # 12 months in chunks of 5: the second file's chunk 0 would land at month 10.
        ((5, 5), "'pr' has 12 steps along 'time' in chunks of 5"),
    ],
)
def test_files_whose_chunks_cannot_line_up_are_not_combined(
    tmp_path: Path, chunks: tuple[int, int], says: str
) -> None:
    paths = []
    for year, chunk in zip((2000, 2001), chunks, strict=True):
        ds = cf_dataset(start=f"{year}-01-01", months=12)
        enc = cf_encoding(ds)
        enc["pr"]["chunksizes"] = (chunk, 18, 36)
        paths.append(tmp_path / f"pr_{year}.nc")
        ds.to_netcdf(paths[-1], encoding=enc)
    with pytest.raises(InvalidInput, match=says):
        build_references(paths)


def test_overlapping_files_are_not_combined(
    netcdf_yearly_files: list[Path], tmp_path: Path
) -> None:
    copy = tmp_path / "copy.nc"
    copy.write_bytes(netcdf_yearly_files[0].read_bytes())
    with pytest.raises(InvalidInput, match="overlaps"):
        build_references([netcdf_yearly_files[0], copy])


# --- over HTTP ------------------------------------------------------------------------------


@pytest.fixture
def http_url(netcdf_file: Path) -> Iterator[str]:
    """RawStore behind a minimal HTTP server: 404 for NotFound, 400 for InvalidInput."""
    refs = build_references([netcdf_file])
    del refs["refs"]["tas/3.0.0"]
    raw = RawStore(refs)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            try:
                body, status = raw.read(self.path.lstrip("/")), 200
            except NotFound as exc:
                body, status = exc.detail.encode(), 404
            except InvalidInput as exc:
                body, status = exc.detail.encode(), 400
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_over_http_a_404_chunk_reads_as_fill_value(http_url: str, netcdf_file: Path) -> None:
    with (
        xr.open_dataset(netcdf_file) as source,
        xr.open_dataset(http_url, engine="zarr", zarr_format=2, consolidated=True) as served,
    ):
        tas = served.tas.load()
        assert bool(tas[3].isnull().all())  # the missing chunk: tas has fill value NaN
        others = np.arange(24) != 3
        xr.testing.assert_equal(tas[others], source.tas[others])
        xr.testing.assert_equal(served.sst.load(), source.sst)


def test_building_references_for_the_fixtures_takes_under_two_seconds(
    netcdf_file: Path, netcdf_yearly_files: list[Path]
) -> None:
    start = time.perf_counter()
    build_references([netcdf_file])
    build_references(netcdf_yearly_files)
    assert time.perf_counter() - start < 2.0
