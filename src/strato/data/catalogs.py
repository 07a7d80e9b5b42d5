"""STAC and intake descriptions of what a node serves."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import cftime
import numpy as np
import xarray as xr
import yaml

STAC_VERSION = "1.0.0"
DATACUBE = "https://stac-extensions.github.io/datacube/v2.2.0/schema.json"
XARRAY_ASSETS = "https://stac-extensions.github.io/xarray-assets/v1.0.0/schema.json"
ZARR_MEDIA_TYPE = "application/vnd+zarr"
GLOBAL_BBOX = [-180.0, -90.0, 180.0, 90.0]

_LAT_NAMES = ("lat", "latitude", "nav_lat", "y")
_LON_NAMES = ("lon", "longitude", "nav_lon", "x")


def _coord(ds: xr.Dataset, standard_name: str, names: tuple[str, ...]) -> xr.DataArray | None:
    for var in ds.coords.values():
        if var.attrs.get("standard_name") == standard_name:
            return cast(xr.DataArray, var)
    for name in names:
        if name in ds.coords:
            return ds.coords[name]
    return None


def lat_lon(ds: xr.Dataset) -> tuple[xr.DataArray | None, xr.DataArray | None]:
    """The latitude and longitude coordinates, by CF standard name or usual name."""
    return _coord(ds, "latitude", _LAT_NAMES), _coord(ds, "longitude", _LON_NAMES)


def holds_cftime(values: np.ndarray[Any, Any]) -> bool:
    """Whether an array holds cftime dates: times on a model calendar (noleap, 360_day...)."""
    if values.dtype != object or values.size == 0:
        return False
    return isinstance(values.reshape(-1)[0], cftime.datetime)


def time_coord(ds: xr.Dataset) -> xr.DataArray | None:
    dated = [
        cast(xr.DataArray, var)
        for var in ds.coords.values()
        if var.ndim == 1
        and (np.issubdtype(var.dtype, np.datetime64) or holds_cftime(np.asarray(var.values)))
    ]
    # The time axis among other dated ones (a forecast's initialisation times, say).
    for var in dated:
        if var.name == "time" or var.attrs.get("axis") == "T":
            return var
    for var in dated:
        if var.attrs.get("standard_name") == "time":
            return var
    return dated[0] if dated else None


def bbox(ds: xr.Dataset) -> list[float]:
    lat, lon = lat_lon(ds)
    if lat is None or lon is None or lat.size == 0 or lon.size == 0:
        return list(GLOBAL_BBOX)
    south, north = float(lat.min()), float(lat.max())
    west, east = float(lon.min()), float(lon.max())
    if not all(np.isfinite(v) for v in (south, north, west, east)):
        return list(GLOBAL_BBOX)  # no valid position at all
    if east > 180:  # 0..360 longitudes
        west, east = (-180.0, 180.0) if east - west > 180 else (west - 360, east - 360)
    return [max(west, -180.0), max(south, -90.0), min(east, 180.0), min(north, 90.0)]


def time_range(ds: xr.Dataset) -> tuple[str | None, str | None]:
    t = time_coord(ds)
    if t is None or t.size == 0:
        return None, None
    return _iso(t.values.min()), _iso(t.values.max())


def _iso(value: Any) -> str:
    if isinstance(value, cftime.datetime):
        return iso_cftime(value)
    return str(np.datetime_as_string(np.datetime64(value, "s"), unit="s")) + "Z"


def real_date(value: cftime.datetime) -> dt.datetime:
    """A model-calendar date as the real date it stands for; a day only the model calendar
    has (30 February in a 360-day year, 29 February in a noleap one cannot occur) becomes
    the last day of that month, so catalogs and clients that know one calendar accept it."""
    last = calendar.monthrange(value.year, value.month)[1] if 1 <= value.year <= 9999 else 28
    year = min(max(value.year, 1), 9999)
    return dt.datetime(
        year,
        value.month,
        min(value.day, last),
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


def iso_cftime(value: cftime.datetime) -> str:
    """ISO 8601 (RFC 3339, UTC) of a cftime date, as STAC wants its datetimes."""
    return real_date(value).strftime("%Y-%m-%dT%H:%M:%S") + "Z"


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return _jsonable(value[()])
        if value.dtype.kind in "mMO":
            # Row by row: tolist() would turn nanosecond times into bare integers.
            return [_jsonable(v) for v in value]
        return [_jsonable(v) for v in value.tolist()]
    # Dates of every kind as ISO text: cftime's model calendars, numpy's, the standard one.
    if isinstance(value, cftime.datetime):
        return iso_cftime(value)
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else _iso(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, np.timedelta64):
        return None if np.isnat(value) else str(value)
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def jsonable_attrs(attrs: dict[Any, Any]) -> dict[str, Any]:
    return {str(k): _jsonable(v) for k, v in attrs.items()}


def cube_dimensions(ds: xr.Dataset) -> dict[str, Any]:
    lat, lon = lat_lon(ds)
    t = time_coord(ds)
    dims: dict[str, Any] = {}
    for name in ds.dims:
        size = ds.sizes[name]
        if t is not None and name == t.name:
            start, end = time_range(ds)
            dims[str(name)] = {"type": "temporal", "extent": [start, end]}
        elif lat is not None and name == lat.name:
            dims[str(name)] = _spatial("y", lat)
        elif lon is not None and name == lon.name:
            dims[str(name)] = _spatial("x", lon)
        elif name in ds.coords and ds.coords[name].ndim == 1 and size <= 100:
            dims[str(name)] = {"type": "other", "values": _jsonable(ds.coords[name].values)}
        else:
            dims[str(name)] = {"type": "other", "extent": [0, size - 1] if size else [None, None]}
    return dims


def _spatial(axis: str, coord: xr.DataArray) -> dict[str, Any]:
    values = np.asarray(coord.values, dtype=np.float64)
    step = float(values[1] - values[0]) if values.size > 1 else None
    # Missing points (masked land of an ocean grid) must not make the extent NaN, which
    # is not JSON.
    finite = values[np.isfinite(values)]
    extent = [float(finite.min()), float(finite.max())] if finite.size else [None, None]
    if step is not None and not np.isfinite(step):
        step = None
    out: dict[str, Any] = {
        "type": "spatial",
        "axis": axis,
        "extent": extent,
        "reference_system": 4326,
    }
    if step is not None:
        out["step"] = step
    return out


def cube_variables(ds: xr.Dataset) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, var in ds.variables.items():
        if name in ds.dims:
            continue
        entry: dict[str, Any] = {
            "type": "data" if name in ds.data_vars and "bnds" not in str(name) else "auxiliary",
            "dimensions": [str(d) for d in var.dims],
        }
        if "units" in var.attrs:
            entry["unit"] = str(var.attrs["units"])
        description = var.attrs.get("long_name") or var.attrs.get("standard_name")
        if description:
            entry["description"] = str(description)
        out[str(name)] = entry
    return out


def stac_item(
    dataset_id: str,
    title: str,
    ds: xr.Dataset,
    base_url: str,
    files: Iterable[Path],
    *,
    raw_available: bool,
) -> dict[str, Any]:
    box = bbox(ds)
    start, end = time_range(ds)
    west, south, east, north = box
    href = f"{base_url}/datasets/{dataset_id}"
    files = list(files)
    assets: dict[str, Any] = {
        "zarr": {
            "href": f"{href}/zarr/",
            "type": ZARR_MEDIA_TYPE,
            "title": f"{title} (processed Zarr, v2 and v3)",
            "roles": ["data", "zarr", "https"],
            # Naming the format spares zarr its warning about finding both v2 and v3 keys.
            "xarray:open_kwargs": {"engine": "zarr", "consolidated": True, "zarr_format": 3},
        }
    }
    if raw_available:
        assets["kerchunk"] = {
            "href": f"{href}/kerchunk/",
            "type": ZARR_MEDIA_TYPE,
            "title": f"{title} (original chunks, Zarr v2 over byte ranges)",
            "roles": ["data", "zarr", "https", "references"],
            "xarray:open_kwargs": {"engine": "zarr", "consolidated": True, "zarr_format": 2},
        }
    if files:
        assets["source"] = {
            "href": files[0].as_uri(),
            "type": "application/netcdf"
            if files[0].suffix == ".nc"
            else "application/octet-stream",
            "title": f"source ({len(files)} file{'s' if len(files) != 1 else ''} on the server)",
            "roles": ["source"],
        }
    properties: dict[str, Any] = {
        "title": title,
        "datetime": None if start else "1970-01-01T00:00:00Z",
        "cube:dimensions": cube_dimensions(ds),
        "cube:variables": cube_variables(ds),
    }
    if start:
        properties["start_datetime"] = start
        properties["end_datetime"] = end
    for key in ("source_id", "experiment_id", "institution_id", "variable_id", "frequency"):
        if key in ds.attrs:
            properties[f"cmip6:{key}"] = str(ds.attrs[key])
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [DATACUBE, XARRAY_ASSETS],
        "id": dataset_id,
        "collection": "datasets",
        "geometry": {
            "type": "Polygon",
            "coordinates": [
                [[west, south], [east, south], [east, north], [west, north], [west, south]]
            ],
        },
        "bbox": box,
        "properties": properties,
        "links": [
            {"rel": "self", "href": f"{href}/stac", "type": "application/geo+json"},
            {
                "rel": "root",
                "href": f"{base_url}/stac-collection-all.json",
                "type": "application/json",
            },
            {
                "rel": "parent",
                "href": f"{base_url}/stac-collection-all.json",
                "type": "application/json",
            },
            {
                "rel": "collection",
                "href": f"{base_url}/stac-collection-all.json",
                "type": "application/json",
            },
            {"rel": "alternate", "href": f"{href}/", "type": "text/html", "title": "dataset page"},
        ],
        "assets": assets,
    }


def stac_collection(node_name: str, base_url: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    boxes = [i["bbox"] for i in items] or [GLOBAL_BBOX]
    union = [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]
    starts = [i["properties"].get("start_datetime") for i in items]
    ends = [i["properties"].get("end_datetime") for i in items]
    start = min((s for s in starts if s), default=None)
    end = max((e for e in ends if e), default=None)
    links = [
        {"rel": "self", "href": f"{base_url}/stac-collection-all.json", "type": "application/json"},
        {"rel": "root", "href": f"{base_url}/stac-collection-all.json", "type": "application/json"},
    ]
    # Each dataset is a STAC Item, so it is linked as an item (what STAC clients follow).
    links += [
        {
            "rel": "item",
            "href": f"{base_url}/datasets/{i['id']}/stac",
            "type": "application/geo+json",
            "title": i["properties"].get("title", i["id"]),
        }
        for i in items
    ]
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": [],
        "id": "datasets",
        "title": f"Datasets served by {node_name}",
        "description": f"Every dataset served as Zarr by the strato node {node_name!r}.",
        "license": "other",
        "extent": {"spatial": {"bbox": [union]}, "temporal": {"interval": [[start, end]]}},
        "links": links,
    }


def intake_catalog(entries: list[tuple[str, str]], base_url: str, *, title: str) -> str:
    """An intake (v1 YAML) catalog; each dataset opens through intake-xarray's zarr driver."""
    sources: dict[str, Any] = {}
    for dataset_id, dataset_title in entries:
        sources[dataset_id] = {
            "description": dataset_title,
            "driver": "zarr",
            "args": {
                "urlpath": f"{base_url}/datasets/{dataset_id}/zarr/",
                "consolidated": True,
                "zarr_format": 3,
            },
            "metadata": {"stac": f"{base_url}/datasets/{dataset_id}/stac"},
        }
    doc = {"metadata": {"version": 1, "title": title}, "sources": sources}
    return str(yaml.safe_dump(doc, sort_keys=False))


def dataset_info(ds: xr.Dataset) -> dict[str, Any]:
    """Same shape as xpublish's /info: close to the NCO-JSON schema."""
    return {
        "dimensions": {str(k): int(v) for k, v in ds.sizes.items()},
        "variables": {
            str(name): {
                "type": var.dtype.name,
                "dimensions": [str(d) for d in var.dims],
                "attributes": jsonable_attrs(dict(var.attrs)),
            }
            for name, var in ds.variables.items()
        },
        "global_attributes": jsonable_attrs(dict(ds.attrs)),
    }


def dataset_dict(ds: xr.Dataset) -> dict[str, Any]:
    result: dict[str, Any] = _jsonable(ds.to_dict(data=False))
    return result
