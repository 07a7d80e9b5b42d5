"""The Zarr v2/v3 view of a dataset, read by xarray through zarr-python as a real store.

Every store here is opened the way a user opens the served URL,
``xr.open_dataset(store, engine="zarr", zarr_format=F, consolidated=True)``, and what it
decodes is compared with what xarray decodes from the source files.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import product
from pathlib import Path
from typing import Any, Literal

import netCDF4
import numcodecs
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from strato.data.zarr_views.compression import Compression
from strato.data.zarr_views.zarr_store import ZarrView
from strato.errors import InvalidInput, NotFound
from tests.data.key_store import KeyStore
from tests.data.model_files import write_calendar_file

FORMATS = [2, 3]
COMBINE: dict[str, Any] = {
    "combine": "nested",
    "concat_dim": "time",
    "data_vars": "minimal",
    "coords": "minimal",
    "compat": "override",
    "join": "override",
}


def open_view(view: ZarrView, zarr_format: Literal[2, 3], **kwargs: Any) -> xr.Dataset:
    with warnings.catch_warnings():
        # zarr warns that consolidated v3 metadata and numcodecs codecs are not in the v3 spec.
        warnings.simplefilter("ignore", UserWarning)
        return xr.open_dataset(
            KeyStore(lambda key: view.get(key, zarr_format)),
            engine="zarr",
            zarr_format=zarr_format,
            consolidated=True,
            **kwargs,
        ).load()


@pytest.fixture
def source(netcdf_file: Path) -> Iterator[xr.Dataset]:
    with xr.open_dataset(netcdf_file) as ds:
        yield ds.load()


@pytest.fixture
def raw(netcdf_file: Path) -> Iterator[xr.Dataset]:
    with xr.open_dataset(netcdf_file, decode_cf=False, cache=False) as ds:
        yield ds


# --- decoding equals the source -----------------------------------------------------------


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_decodes_exactly_the_source(
    raw: xr.Dataset, source: xr.Dataset, zarr_format: Literal[2, 3]
) -> None:
    served = open_view(ZarrView(raw), zarr_format)

    xr.testing.assert_identical(served, source)
    assert served["tas"].attrs["units"] == "K"
    assert served["tas"].attrs["long_name"] == "Near-Surface Air Temperature"
    assert served["time"].dtype == np.dtype("datetime64[ns]")
    assert (served["time"].values == pd.date_range("2000-01-01", periods=24, freq="MS")).all()
    # Packed int16 with scale and offset decodes to the same float64 values.
    assert served["sst"].dtype == source["sst"].dtype == np.float64
    np.testing.assert_array_equal(served["sst"].values, source["sst"].values)
    # pr's fill value 1e20 marks missing data: NaN exactly there.
    assert np.isnan(served["pr"].values[:, 0, :5]).all()
    assert np.isnan(served["pr"].values).sum() == 24 * 5
    assert served.attrs["source_id"] == "TEST-1"


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_metadata_is_what_xarrays_zarr_writer_writes(
    raw: xr.Dataset, tmp_path: Path, zarr_format: Literal[2, 3]
) -> None:
    """dtype, fill_value and attributes are those of ``raw.to_zarr``; codecs and chunks differ."""
    path = tmp_path / "written.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        raw.to_zarr(path, zarr_format=zarr_format, consolidated=True)
    view = ZarrView(raw)
    if zarr_format == 2:
        written = json.loads((path / ".zmetadata").read_text())["metadata"]
        ours = json.loads(view.get(".zmetadata", 2))["metadata"]
        assert ours[".zattrs"] == written[".zattrs"]
        for name in ("tas", "pr", "sst", "time", "lat", "lon"):
            assert ours[f"{name}/.zattrs"] == written[f"{name}/.zattrs"]
            for field in ("shape", "dtype", "fill_value", "order", "dimension_separator"):
                assert ours[f"{name}/.zarray"][field] == written[f"{name}/.zarray"][field], field
        assert ours["pr/.zarray"]["fill_value"] == 1.0000000200408773e20
        assert ours["sst/.zarray"]["fill_value"] == -32767
    else:
        written = json.loads((path / "zarr.json").read_text())
        ours = json.loads(view.get("zarr.json", 3))
        assert ours["attributes"] == written["attributes"]
        theirs = written["consolidated_metadata"]["metadata"]
        mine = ours["consolidated_metadata"]["metadata"]
        assert set(mine) == set(theirs)
        for name in theirs:
            for field in ("shape", "data_type", "fill_value", "attributes", "dimension_names"):
                assert mine[name][field] == theirs[name][field], (name, field)
            assert json.loads(view.get(f"{name}/zarr.json", 3)) == mine[name]
        assert mine["sst"]["attributes"]["_FillValue"] == -32767
        assert mine["pr"]["fill_value"] == "NaN"


def test_metadata_documents(raw: xr.Dataset) -> None:
    view = ZarrView(raw)
    assert json.loads(view.get(".zgroup", 2)) == {"zarr_format": 2}
    assert json.loads(view.get(".zattrs", 2))["Conventions"] == "CF-1.7 CMIP-6.2"
    assert json.loads(view.get("tas/.zattrs", 2))["_ARRAY_DIMENSIONS"] == ["time", "lat", "lon"]
    zarray = json.loads(view.get("tas/.zarray", 2))
    assert zarray["compressor"] == {"id": "zstd", "level": 1, "checksum": False}
    assert zarray["chunks"] == [1, 18, 36]  # the file's own chunks
    assert view.v2_metadata()["metadata"]["tas/.zarray"] == zarray
    root = view.v3_metadata()
    assert root["node_type"] == "group"
    assert root["consolidated_metadata"]["kind"] == "inline"
    codecs = root["consolidated_metadata"]["metadata"]["tas"]["codecs"]
    assert codecs == [
        {"name": "bytes", "configuration": {"endian": "little"}},
        {"name": "zstd", "configuration": {"level": 1, "checksum": False}},
    ]
    assert view.variables() == ["tas", "pr", "sst", "time", "lat", "lon"]
    assert view.variable_nbytes("tas") == 24 * 18 * 36 * 4
    assert view.variable_nbytes("sst") == 24 * 18 * 36 * 2


# --- compression ----------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["blosc-lz4", "none"])
@pytest.mark.parametrize("zarr_format", FORMATS)
def test_other_codecs_decode_the_same(
    raw: xr.Dataset,
    source: xr.Dataset,
    codec: Literal["blosc-lz4", "none"],
    zarr_format: Literal[2, 3],
) -> None:
    view = ZarrView(raw, Compression(codec=codec, level=5))
    xr.testing.assert_identical(open_view(view, zarr_format), source)

    zarray = json.loads(view.get("tas/.zarray", 2))
    codecs = json.loads(view.get("tas/zarr.json", 3))["codecs"]
    chunk = view.get("tas/0.0.0", 2)
    if codec == "none":
        assert zarray["compressor"] is None
        assert [c["name"] for c in codecs] == ["bytes"]
        assert chunk == source["tas"].values[:1].astype("<f4").tobytes()
    else:
        assert zarray["compressor"]["id"] == "blosc"
        assert zarray["compressor"]["cname"] == "lz4"
        assert zarray["compressor"]["shuffle"] == numcodecs.Blosc.SHUFFLE
        assert codecs[-1]["name"] == "blosc"
        assert codecs[-1]["configuration"]["shuffle"] == "shuffle"
        assert codecs[-1]["configuration"]["typesize"] == 4
        assert len(chunk) < 18 * 36 * 4


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_bitround_is_declared_and_bounded(
    raw: xr.Dataset, source: xr.Dataset, zarr_format: Literal[2, 3]
) -> None:
    keepbits = 7
    view = ZarrView(raw, Compression(bitround_keepbits=keepbits))
    assert json.loads(view.get("tas/.zarray", 2))["filters"] == [
        {"id": "bitround", "keepbits": keepbits}
    ]
    assert json.loads(view.get("tas/zarr.json", 3))["codecs"][0] == {
        "name": "numcodecs.bitround",
        "configuration": {"keepbits": keepbits},
    }
    # Coordinates and packed integers are never rounded.
    for name in ("time", "lat", "lon", "sst"):
        assert json.loads(view.get(f"{name}/.zarray", 2))["filters"] is None

    served = open_view(view, zarr_format)
    tas, expected = served["tas"].values, source["tas"].values
    assert not np.array_equal(tas, expected)  # lossy...
    np.testing.assert_allclose(tas, expected, rtol=2.0**-keepbits, atol=0)  # ...within bounds
    for name in ("time", "lat", "lon", "sst"):
        xr.testing.assert_identical(served[name], source[name])
    # The fill value 1e20 survives rounding, so missing data stays missing.
    np.testing.assert_array_equal(np.isnan(served["pr"].values), np.isnan(source["pr"].values))
    # Rounded chunks compress better.
    plain = ZarrView(raw)
    assert len(view.get("tas/0.0.0", 2)) < 0.8 * len(plain.get("tas/0.0.0", 2))


def test_compression_settings_are_checked() -> None:
    with pytest.raises(InvalidInput, match="0 to 9"):
        Compression(codec="blosc-lz4", level=12)
    with pytest.raises(InvalidInput, match="1 to 52"):
        Compression(bitround_keepbits=0)


# --- chunks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_requested_chunks_and_padded_edge_chunk(
    raw: xr.Dataset, source: xr.Dataset, zarr_format: Literal[2, 3]
) -> None:
    view = ZarrView(raw, Compression(codec="none"), chunks={"time": 5})
    assert json.loads(view.get("tas/.zarray", 2))["chunks"] == [5, 18, 36]
    grid = json.loads(view.get("sst/zarr.json", 3))["chunk_grid"]["configuration"]
    assert grid["chunk_shape"] == [5, 18, 36]

    served = open_view(view, zarr_format)
    xr.testing.assert_identical(served, source)
    assert served["tas"].encoding["chunks"] == (5, 18, 36)
    lazily = xr.open_dataset(
        KeyStore(lambda key: view.get(key, zarr_format)),
        engine="zarr",
        zarr_format=zarr_format,
        chunks={},
    )
    assert lazily["tas"].chunks[0] == (5, 5, 5, 5, 4)

    # The last chunk holds time steps 20..23 and one padding step of full size.
    edge = view.get("tas/4.0.0" if zarr_format == 2 else "tas/c/4/0/0", zarr_format)
    values = np.frombuffer(edge, dtype="<f4").reshape(5, 18, 36)
    np.testing.assert_array_equal(values[:4], source["tas"].values[20:])
    assert np.isnan(values[4]).all()
    packed = view.get("sst/4.0.0" if zarr_format == 2 else "sst/c/4/0/0", zarr_format)
    pad = np.frombuffer(packed, dtype="<i2").reshape(5, 18, 36)[4]
    # Each format pads with the fill_value it declares: _FillValue in v2, zero in v3.
    assert (pad == (-32767 if zarr_format == 2 else 0)).all()


def test_default_chunks_keep_whole_fields_near_8_mib() -> None:
    shape = (300, 180, 360)
    ds = xr.Dataset(
        {"tas": (("time", "lat", "lon"), np.broadcast_to(np.float32(280), shape))},
        coords={"time": np.arange(300.0), "lat": np.arange(180.0), "lon": np.arange(360.0)},
    )
    view = ZarrView(ds)
    chunks = view.chunk_shape("tas")
    assert chunks[1:] == (180, 360)
    assert 4 << 20 <= np.prod(chunks) * 4 <= 16 << 20
    assert view.chunk_shape("time") == (300,)
    # A chunk count the provider asked for wins over the heuristic on that dimension only.
    assert ZarrView(ds, chunks={"lat": 90}).chunk_shape("tas")[1:] == (90, 360)


def test_bad_chunk_requests(raw: xr.Dataset) -> None:
    with pytest.raises(InvalidInput, match="not a dimension; dimensions are time, lat, lon"):
        ZarrView(raw, chunks={"depth": 3})
    with pytest.raises(InvalidInput, match="at least 1"):
        ZarrView(raw, chunks={"time": 0})


# --- computed results and several files ------------------------------------------------------


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_from_decoded_climatology(netcdf_file: Path, zarr_format: Literal[2, 3]) -> None:
    with xr.open_dataset(netcdf_file, chunks={}) as ds:
        climatology = ds.groupby("time.month").mean().load()
    view = ZarrView.from_decoded(climatology)
    served = open_view(view, zarr_format)
    xr.testing.assert_identical(served, climatology)
    assert served["month"].values.tolist() == list(range(1, 13))
    # Means of packed sst are served as computed, not re-packed to 0.01 steps.
    assert json.loads(view.get("sst/.zarray", 2))["dtype"] == "<f8"


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_from_decoded_keeps_times_and_non_index_coordinates(
    source: xr.Dataset, zarr_format: Literal[2, 3]
) -> None:
    ds = source.assign_coords(height=2.0, month=("time", source["time"].dt.month.values))
    served = open_view(ZarrView.from_decoded(ds), zarr_format)
    xr.testing.assert_identical(served, ds)
    assert set(served.coords) == {"time", "lat", "lon", "height", "month"}


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_decoded_dataset_given_as_raw_is_still_served_right(
    source: xr.Dataset, zarr_format: Literal[2, 3]
) -> None:
    """Datetimes in what should be raw data are encoded on the way, not rejected."""
    served = open_view(ZarrView(source), zarr_format)
    xr.testing.assert_identical(served, source)


@pytest.mark.parametrize("dask_chunks", [None, {"time": 12}])
@pytest.mark.parametrize("zarr_format", FORMATS)
def test_several_files_combined_along_time(
    netcdf_yearly_files: list[Path],
    zarr_format: Literal[2, 3],
    dask_chunks: dict[str, int] | None,
) -> None:
    """Zarr chunks of 5 steps over dask blocks of the file's 1 step, or of a year each."""
    with (
        xr.open_mfdataset(
            netcdf_yearly_files, decode_cf=False, chunks=dask_chunks, **COMBINE
        ) as raw,
        xr.open_mfdataset(netcdf_yearly_files, **COMBINE) as decoded,
    ):
        view = ZarrView(raw, chunks={"time": 5})  # chunks straddle the files
        served = open_view(view, zarr_format)
        expected = decoded.load()
    xr.testing.assert_identical(served, expected)
    assert served.sizes["time"] == 36
    assert served["time"].values[12] == np.datetime64("2001-01-01")


@pytest.mark.parametrize("dask_chunks", [None, {"time": 12}])
def test_the_dask_graph_walker_gives_the_bytes_dask_computes(
    netcdf_yearly_files: list[Path], dask_chunks: dict[str, int] | None
) -> None:
    """The fast path (data.fast_dask_blocks) on and off: every key, byte for byte."""
    with xr.open_mfdataset(
        netcdf_yearly_files, decode_cf=False, chunks=dask_chunks, **COMBINE
    ) as raw:
        fast = ZarrView(raw, chunks={"time": 5, "lat": 7})  # straddling files and blocks
        plain = ZarrView(raw, chunks={"time": 5, "lat": 7}, fast_dask_blocks=False)
        assert type(fast._arrays["tas"].read).__name__ == "DaskBlocks"
        assert type(plain._arrays["tas"].read).__name__ == "LazyReader"
        for fmt in (2, 3):
            for name in fast.variables():
                for index in product(*(range(n) for n in fast._arrays[name].grid)):
                    cell = ("." if fmt == 2 else "/").join(map(str, index)) or "0"
                    key = f"{name}/{'c/' if fmt == 3 else ''}{cell}"
                    assert fast.get(key, fmt) == plain.get(key, fmt), key


# --- other encodings -------------------------------------------------------------------------


@pytest.fixture
def cf_extras_file(tmp_path: Path) -> Path:
    """Bounds, a scalar coordinate, characters, flags, missing_value, a string variable."""
    path = tmp_path / "extras.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", 4)
        nc.createDimension("lat", 3)
        nc.createDimension("bnds", 2)
        nc.createDimension("strlen", 5)
        time = nc.createVariable("time", "f8", ("time",))
        time.units = "hours since 2000-01-01 00:00"
        time.calendar = "noleap"
        time.bounds = "time_bnds"
        time[:] = [0, 6, 12, 18]
        bnds = nc.createVariable("time_bnds", "f8", ("time", "bnds"))
        bnds[:] = [[-3, 3], [3, 9], [9, 15], [15, 21]]
        lat = nc.createVariable("lat", "f4", ("lat",))
        lat.units = "degrees_north"
        lat.bounds = "lat_bnds"
        lat[:] = [-30, 0, 30]
        nc.createVariable("lat_bnds", "f4", ("lat", "bnds"))[:] = [[-45, -15], [-15, 15], [15, 45]]
        height = nc.createVariable("height", "f8", ())
        height.units = "m"
        height[...] = 2.0
        tas = nc.createVariable("tas", "f4", ("time", "lat"), fill_value=-999.0)
        tas.coordinates = "height"
        tas.units = "K"
        tas[:] = np.ma.masked_equal([[1, 2, -999], [4, 5, 6], [7, 8, 9], [10, -999, 12]], -999)
        q = nc.createVariable("q", "i2", ("time", "lat"))
        q.missing_value = np.int16(-1)
        q[:] = [[1, -1, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]
        flag = nc.createVariable("ocean", "i1", ("lat",))
        flag.flag_values = np.array([0, 1], dtype="i1")
        flag[:] = [0, 1, 1]
        names = nc.createVariable("station", "S1", ("lat", "strlen"))
        names[:] = netCDF4.stringtochar(np.array(["north", "eq", "south"], dtype="S5"))
        label = nc.createVariable("label", str, ("lat",))
        label[:] = np.array(["a", "bb", "ccc"], dtype=object)
        nc.title = "extras"
    return path


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_bounds_scalar_coordinates_characters_and_missing_values(
    cf_extras_file: Path, zarr_format: Literal[2, 3]
) -> None:
    with (
        xr.open_dataset(cf_extras_file, decode_cf=False) as raw,
        xr.open_dataset(cf_extras_file) as decoded,
    ):
        view = ZarrView(raw)
        served = open_view(view, zarr_format)
        expected = decoded.load()
    xr.testing.assert_identical(served, expected)
    assert "height" in served.coords
    assert served["time"].values[1].calendar == "noleap"
    assert served["station"].values.tolist() == [b"north", b"eq", b"south"]
    assert served["label"].values.tolist() == ["a", "bb", "ccc"]
    assert np.isnan(served["q"].values[0, 1])
    assert np.isnan(served["tas"].values[0, 2])


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_variable_length_strings_are_served_and_other_objects_skipped(
    zarr_format: Literal[2, 3],
) -> None:
    ds = xr.Dataset(
        {
            "tas": ("x", np.arange(3.0)),
            "note": ("x", np.array(["a", None, "ç"], dtype=object)),
            "blob": ("x", np.array([{"a": 1}, {}, {}], dtype=object)),
        }
    )
    view = ZarrView(ds)
    assert view.variables() == ["tas", "note"]
    assert view.skipped == {"blob": "object dtype holding other than text has no Zarr data type"}
    with pytest.raises(NotFound, match="not served: object dtype"):
        view.get("blob/.zarray", 2)
    # A missing string reads as an empty one, as zarr fills strings.
    assert open_view(view, zarr_format)["note"].values.tolist() == ["a", "", "ç"]


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_netcdf3_file(netcdf3_file: Path, zarr_format: Literal[2, 3]) -> None:
    with (
        xr.open_dataset(netcdf3_file, engine="scipy", decode_cf=False) as raw,
        xr.open_dataset(netcdf3_file) as decoded,
    ):
        served = open_view(ZarrView(raw), zarr_format)
        xr.testing.assert_identical(served, decoded.load())


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_big_endian_values_are_served_little_endian(zarr_format: Literal[2, 3]) -> None:
    values = np.arange(12, dtype=">i2").reshape(3, 4)
    raw = xr.Dataset({"t": (("y", "x"), values, {"scale_factor": 0.5, "_FillValue": np.int16(11)})})
    view = ZarrView(raw)
    assert json.loads(view.get("t/.zarray", 2))["dtype"] == "<i2"
    served = open_view(view, zarr_format)
    expected = np.where(values == 11, np.nan, values * 0.5)
    np.testing.assert_array_equal(served["t"].values, expected)


# --- keys and errors -------------------------------------------------------------------------


def test_errors_name_the_valid_forms(raw: xr.Dataset) -> None:
    view = ZarrView(raw)
    with pytest.raises(NotFound, match="no variable 'nope'; variables are tas, pr, sst"):
        view.get("nope/0.0.0", 2)
    with pytest.raises(NotFound, match="no variable 'nope'"):
        view.get("nope/zarr.json", 3)
    form = r"tas/0\.0\.0 \(3 indices: time < 24, lat < 1, lon < 1\)"
    with pytest.raises(InvalidInput, match=form):
        view.get("tas/0.0", 2)
    with pytest.raises(InvalidInput, match=form):
        view.get("tas/a.b.c", 2)
    with pytest.raises(InvalidInput, match=form):
        view.get("tas/c/0/0/0", 2)  # a v3 chunk key asked as v2
    with pytest.raises(InvalidInput, match=r"tas/c/0/0/0 \(3 indices"):
        view.get("tas/0.0.0", 3)  # and the other way round
    with pytest.raises(InvalidInput, match=r"tas/c/0/0/0"):
        view.get("tas/c/0/0", 3)
    with pytest.raises(NotFound, match="out of range"):
        view.get("tas/24.0.0", 2)
    with pytest.raises(NotFound, match="out of range"):
        view.get("tas/c/0/1/0", 3)
    with pytest.raises(NotFound, match="is a Zarr v3 key"):
        view.get("zarr.json", 2)
    with pytest.raises(NotFound, match="is a Zarr v3 key"):
        view.get("tas/zarr.json", 2)
    with pytest.raises(NotFound, match="is a Zarr v2 key"):
        view.get(".zmetadata", 3)
    with pytest.raises(NotFound, match=r"root keys are \.zmetadata"):
        view.get("other", 2)
    with pytest.raises(NotFound, match="no variable 'nope'"):
        view.variable_nbytes("nope")


def test_scalar_chunk_keys(cf_extras_file: Path) -> None:
    with xr.open_dataset(cf_extras_file, decode_cf=False) as raw:
        view = ZarrView(raw, Compression(codec="none"))
        assert np.frombuffer(view.get("height/0", 2), "<f8").tolist() == [2.0]
        assert np.frombuffer(view.get("height/c", 3), "<f8").tolist() == [2.0]
        with pytest.raises(InvalidInput, match=r"height/0 \(a scalar has one chunk\)"):
            view.get("height/0.0", 2)


@pytest.mark.parametrize("codec", ["zstd", "blosc-lz4"])
def test_concurrent_gets_match_sequential_ones(
    netcdf_yearly_files: list[Path], codec: Literal["zstd", "blosc-lz4"]
) -> None:
    with xr.open_mfdataset(netcdf_yearly_files, decode_cf=False, **COMBINE) as raw:
        view = ZarrView(raw, Compression(codec=codec), chunks={"time": 5})
        keys: list[tuple[str, Literal[2, 3]]] = []
        for name in ("tas", "pr", "sst"):
            for i, j, k in product(range(8), range(1), range(1)):
                keys += [(f"{name}/{i}.{j}.{k}", 2), (f"{name}/c/{i}/{j}/{k}", 3)]
        expected = [view.get(key, fmt) for key, fmt in keys]
        with ThreadPoolExecutor(8) as pool:
            for _ in range(3):
                got = list(pool.map(lambda kf: view.get(*kf), keys))
                assert got == expected


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_decoded_model_calendar_times_are_served(
    tmp_path: Path, zarr_format: Literal[2, 3]
) -> None:
    # Files whose encodings differ are served from decoded data: their cftime axis too.
    with xr.open_dataset(write_calendar_file(tmp_path / "noleap.nc", "noleap")) as source:
        served = open_view(ZarrView.from_decoded(source), zarr_format)
        xr.testing.assert_identical(served.time, source.time)
        assert served["time"].values[0].calendar == "noleap"
