"""STAC descriptions of datasets as models write them: every value is plain JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from strato.data.catalogs import stac_item
from tests.data.conftest import cf_dataset


def _item(ds: xr.Dataset) -> dict[str, object]:
    item = stac_item("d", "D", ds, "http://node.example", [Path("/data/d.nc")], raw_available=True)
    # What a STAC client and the catalog's events need: strict JSON, no NaN.
    return dict(json.loads(json.dumps(item, allow_nan=False)))


def test_dates_of_any_dimension_are_iso_text() -> None:
    ds = cf_dataset(months=3).expand_dims(
        init=np.array(["2000-01-01T00", "2000-01-01T12"], dtype="datetime64[ns]")
    )
    dims = _item(ds)["properties"]["cube:dimensions"]  # type: ignore[index]
    assert dims["init"]["values"] == ["2000-01-01T00:00:00Z", "2000-01-01T12:00:00Z"]


def test_missing_positions_leave_a_finite_extent() -> None:
    ds = cf_dataset(months=2)
    lat = ds.lat.values.copy()
    lat[0] = np.nan  # a fill value decoded to NaN, as ocean grids carry on land
    ds = ds.assign_coords(lat=("lat", lat, ds.lat.attrs))
    dims = _item(ds)["properties"]["cube:dimensions"]  # type: ignore[index]
    assert dims["lat"]["extent"] == [float(np.nanmin(lat)), float(np.nanmax(lat))]
