"""HTTP layer of strato.data: dataset endpoints (xpublish-compatible paths), Zarr
stores, catalogs, plots, diagnostics and the registration API."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import xarray as xr
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from strato.analytics import Analytics
from strato.auth import Principal, Scope
from strato.caching import LRU
from strato.data import catalogs
from strato.data.analysis.diagnostics import groupby_reduce
from strato.data.analysis.plots import render_plot
from strato.data.datasets.hdf5 import HDF5_LOCK
from strato.data.datasets.registry import parse_chunks
from strato.data.datasets.sources import DatasetStatus, OpenedDataset
from strato.data.model.selection import parse_selection
from strato.data.service import DataService
from strato.data.settings import DataSettings
from strato.data.zarr_views.zarr_store import ZarrView
from strato.errors import NotFound
from strato.http.conditional import conditional, make_etag
from strato.http.security import Authenticator
from strato.settings import Settings

JSON = "application/json"
OCTETS = "application/octet-stream"
# Diagnostics results kept (each a reduced dataset, small by the byte budget).
GROUPBY_RESULTS = 32
_METADATA_NAMES = {".zmetadata", ".zgroup", ".zattrs", ".zarray", "zarr.json"}


def zarr_format_of(key: str) -> Literal[2, 3]:
    parts = key.split("/")
    if parts[-1] == "zarr.json" or "c" in parts[1:]:
        return 3
    return 2


def media_type_of(key: str) -> str:
    return JSON if key.rsplit("/", 1)[-1] in _METADATA_NAMES else OCTETS


class RegisterRequest(BaseModel):
    id: str = Field(min_length=1, max_length=128)
    sources: list[str] = Field(min_length=1, max_length=10_000)
    title: str | None = Field(None, max_length=255)
    chunks: dict[str, int] = Field(default_factory=dict)
    concat_dim: str = Field("time", max_length=64)
    replace: bool = False


class DatasetOut(BaseModel):
    id: str
    title: str
    state: str
    reason: str | None
    files: int
    sources: list[str]
    chunks: dict[str, int]
    links: dict[str, str]


def store_etag(opened: OpenedDataset, key: str) -> str:
    """The ETag of a key of a dataset's stores (/zarr and /kerchunk, either path): the
    files it was opened from and the encoding its chunks are served in."""
    return make_etag(opened.fingerprint, key, str(opened.compression))


def get_and_head(
    router: APIRouter, path: str, **options: Any
) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Register GET and HEAD separately, so each has its own OpenAPI operation id."""

    def register(endpoint: Callable[..., Response]) -> Callable[..., Response]:
        for method in ("GET", "HEAD"):
            router.add_api_route(
                path,
                endpoint,
                methods=[method],
                operation_id=f"{endpoint.__name__}_{method.lower()}",
                **options,
            )
        return endpoint

    return register


def make_router(
    service: DataService,
    auth: Authenticator,
    settings: Settings,
    analytics: Callable[[], Analytics | None] = lambda: None,
) -> APIRouter:
    """``analytics`` gives, when a request comes, what runs the groupby diagnostics as
    processes (offered by another capability, installed after this one); without it they
    are computed here."""
    router = APIRouter()
    data = DataSettings.of(settings)
    read = Depends(auth.require(Scope.READ))
    publish = Depends(auth.require(Scope.PUBLISH))
    # Small results of diagnostics, by dataset version, so repeated reads are free.
    results: LRU[tuple[str, ...], tuple[xr.Dataset, ZarrView]] = LRU(GROUPBY_RESULTS)

    def base_url(request: Request) -> str:
        if settings.public_url:
            return settings.public_url.rstrip("/")
        return str(request.base_url).rstrip("/")

    def links(base: str, dataset_id: str) -> dict[str, str]:
        href = f"{base}/datasets/{dataset_id}"
        return {
            "page": f"{href}/",
            "zarr": f"{href}/zarr/",
            "kerchunk": f"{href}/kerchunk/",
            "stac": f"{href}/stac",
            "intake": f"{href}/catalog.yaml",
        }

    def out(status: DatasetStatus, request: Request) -> DatasetOut:
        reg = service.registry.get(status.id)
        return DatasetOut(
            id=status.id,
            title=status.title,
            state=status.state,
            reason=status.reason,
            files=status.files,
            sources=list(reg.sources),
            chunks=dict(reg.chunks),
            links=links(base_url(request), status.id),
        )

    # --- registration API -------------------------------------------------------------
    @router.get("/api/datasets", tags=["datasets"], summary="Registered datasets and their state")
    def list_registrations(request: Request, _: Principal = read) -> list[DatasetOut]:
        return [out(s, request) for s in service.statuses()]

    @router.post("/api/datasets", status_code=201, tags=["datasets"], summary="Register a dataset")
    def register(body: RegisterRequest, request: Request, who: Principal = publish) -> DatasetOut:
        opened = service.register(
            body.id,
            body.sources,
            title=body.title,
            chunks=parse_chunks(body.chunks),
            concat_dim=body.concat_dim,
            owner=who.user,
            replace=body.replace,
        )
        return out(
            DatasetStatus(opened.id, opened.registration.title, "ok", None, len(opened.files)),
            request,
        )

    @router.delete(
        "/api/datasets/{dataset_id}",
        status_code=204,
        tags=["datasets"],
        summary="Stop serving a dataset (its files are left alone)",
    )
    def unregister(dataset_id: str, _: Principal = publish) -> Response:
        service.remove(dataset_id)
        return Response(status_code=204)

    # --- xpublish-compatible dataset endpoints --------------------------------------
    @router.get("/datasets/{dataset_id}/keys", tags=["datasets"], summary="Variable names")
    def keys(dataset_id: str, _: Principal = read) -> list[str]:
        return [str(k) for k in service.cache.get(dataset_id).decoded.variables]

    @router.get(
        "/datasets/{dataset_id}/dict", tags=["datasets"], summary="Dataset as a dict, no data"
    )
    def to_dict(dataset_id: str, _: Principal = read) -> JSONResponse:
        return JSONResponse(catalogs.dataset_dict(service.cache.get(dataset_id).decoded))

    @router.get(
        "/datasets/{dataset_id}/info", tags=["datasets"], summary="Dataset schema (NCO-JSON-like)"
    )
    def info(dataset_id: str, _: Principal = read) -> JSONResponse:
        return JSONResponse(catalogs.dataset_info(service.cache.get(dataset_id).decoded))

    # --- stores -----------------------------------------------------------------------
    def store_key(
        opened: OpenedDataset, request: Request, key: str, get: Callable[[], bytes]
    ) -> Response:
        return conditional(
            request,
            get,
            etag=store_etag(opened, key),
            last_modified=opened.last_modified,
            cache_control=data.cache_control,
            media_type=media_type_of(key),
        )

    @get_and_head(
        router,
        "/datasets/{dataset_id}/zarr/{key:path}",
        tags=["zarr"],
        summary="Processed Zarr store (v2 and v3 keys)",
    )
    def zarr_key(dataset_id: str, key: str, request: Request, _: Principal = read) -> Response:
        opened = service.cache.get(dataset_id)
        if not key:
            raise NotFound("this is a Zarr store: open it with xr.open_dataset(url, engine='zarr')")
        fmt = zarr_format_of(key)
        return store_key(opened, request, key, lambda: opened.zarr.get(key, fmt))

    @get_and_head(
        router,
        "/datasets/{dataset_id}/kerchunk/{key:path}",
        tags=["zarr"],
        summary="Raw chunks of the original files (Zarr v2 over byte ranges)",
    )
    def kerchunk_key(dataset_id: str, key: str, request: Request, _: Principal = read) -> Response:
        opened = service.cache.get(dataset_id)
        if not key:
            raise NotFound(
                "this is a Zarr v2 store: open it with xr.open_dataset(url, engine='zarr')"
            )
        store = opened.raw_store
        return store_key(opened, request, key, lambda: store.read(key))

    # --- catalogs ---------------------------------------------------------------------
    @router.get("/datasets/{dataset_id}/stac", tags=["catalogs"], summary="STAC Item of a dataset")
    def stac_item(dataset_id: str, request: Request, _: Principal = read) -> JSONResponse:
        item = service.stac_item(dataset_id, base_url(request))
        return JSONResponse(item, media_type="application/geo+json")

    @router.get(
        "/stac-collection-all.json", tags=["catalogs"], summary="STAC Collection of all datasets"
    )
    def stac_collection(request: Request, _: Principal = read) -> JSONResponse:
        base = base_url(request)
        items = []
        for status in service.statuses():
            if status.state == "ok":
                items.append(service.stac_item(status.id, base))
        return JSONResponse(catalogs.stac_collection(settings.node_name, base, items))

    @router.get("/intake.yaml", tags=["catalogs"], summary="intake catalog of all datasets")
    def intake_all(request: Request, _: Principal = read) -> Response:
        entries = [(s.id, s.title) for s in service.statuses() if s.state == "ok"]
        text = catalogs.intake_catalog(
            entries, base_url(request), title=f"strato {settings.node_name}"
        )
        return Response(text, media_type="application/yaml")

    @router.get(
        "/datasets/{dataset_id}/catalog.yaml",
        tags=["catalogs"],
        summary="intake catalog of one dataset",
    )
    def intake_one(dataset_id: str, request: Request, _: Principal = read) -> Response:
        opened = service.cache.get(dataset_id)
        text = catalogs.intake_catalog(
            [(opened.id, opened.registration.title)],
            base_url(request),
            title=opened.registration.title,
        )
        return Response(text, media_type="application/yaml")

    # --- plots and diagnostics --------------------------------------------------------
    @router.get(
        "/datasets/{dataset_id}/plot/{var}/{kind}/{cmap}/{selection}",
        tags=["plots"],
        summary="PNG plot: map, timeseries or hovmoller; selection e.g. time=2001-06,lat=-30:30",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}},
    )
    def plot(
        dataset_id: str,
        var: str,
        kind: str,
        cmap: str,
        selection: str,
        request: Request,
        _: Principal = read,
    ) -> Response:
        opened = service.cache.get(dataset_id)
        sel = parse_selection(selection)
        return conditional(
            request,
            lambda: render_plot(opened.decoded, var, kind, cmap, sel, byte_budget=data.byte_budget),
            etag=make_etag(opened.fingerprint, "plot", var, kind, cmap, selection),
            last_modified=opened.last_modified,
            cache_control=data.cache_control,
            media_type="image/png",
        )

    def reduce(
        dataset_id: str, var: str, coord: str, action: str, who: Principal
    ) -> tuple[OpenedDataset, xr.Dataset, ZarrView]:
        opened = service.cache.get(dataset_id)

        def compute() -> tuple[xr.Dataset, ZarrView]:
            runner = analytics()
            result = None
            decoded = opened.decoded
            base = coord.partition(".")[0]
            if runner is not None and var in decoded.data_vars and base in decoded.coords:
                # The climatology process runs it (as a job); what it does not take
                # is computed here, with the errors this route always gave.
                result = runner.groupby(dataset_id, var, coord, action, owner=who.user or "")
            if result is None:
                result = groupby_reduce(
                    opened.decoded, var, coord, action, byte_budget=data.byte_budget
                )
            return result, ZarrView.from_decoded(result, opened.compression)

        result, view = results.get_or_make(
            (opened.id, opened.fingerprint, var, coord, action), compute
        )
        return opened, result, view

    @router.get(
        "/datasets/{dataset_id}/groupby/{var}/{coord}/{action}",
        tags=["diagnostics"],
        summary="Group by a coordinate (time.month, time.season, time.year, ...) and reduce",
    )
    def groupby(
        dataset_id: str,
        var: str,
        coord: str,
        action: str,
        request: Request,
        format: Literal["json", "netcdf"] = Query(
            "json", description="json summary or a netcdf file"
        ),
        who: Principal = read,
    ) -> Response:
        _opened, result, _view = reduce(dataset_id, var, coord, action, who)
        if format == "netcdf":
            name = f"{dataset_id}_{var}_{coord}_{action}.nc"
            return Response(
                to_netcdf_bytes(result),
                media_type="application/x-netcdf",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        here = f"{base_url(request)}/datasets/{dataset_id}/groupby/{var}/{coord}/{action}"
        summary = catalogs.dataset_info(result)
        summary["values"] = catalogs.jsonable_attrs({"v": result[var].values})["v"]
        summary["links"] = {"zarr": f"{here}/zarr/", "netcdf": f"{here}?format=netcdf"}
        return JSONResponse(summary)

    @get_and_head(
        router,
        "/datasets/{dataset_id}/groupby/{var}/{coord}/{action}/zarr/{key:path}",
        tags=["diagnostics"],
        summary="The groupby result as a Zarr store",
    )
    def groupby_zarr(
        dataset_id: str,
        var: str,
        coord: str,
        action: str,
        key: str,
        request: Request,
        who: Principal = read,
    ) -> Response:
        opened, _result, view = reduce(dataset_id, var, coord, action, who)
        return conditional(
            request,
            lambda: view.get(key, zarr_format_of(key)),
            etag=make_etag(opened.fingerprint, "groupby", var, coord, action, key),
            last_modified=opened.last_modified,
            cache_control=data.cache_control,
            media_type=media_type_of(key),
        )

    return router


def to_netcdf_bytes(ds: xr.Dataset) -> bytes:
    # Read first, outside the lock: reading takes it in dask's threads, and this thread
    # waiting for them while holding it would never end.
    ds = ds.load()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "result.nc"
        with HDF5_LOCK:  # netCDF4 writes through libhdf5, which is not thread-safe
            ds.to_netcdf(path, engine="netcdf4")
        return path.read_bytes()
