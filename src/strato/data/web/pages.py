"""Web pages of strato.data: the datasets list and a page per dataset."""

from __future__ import annotations

from typing import Any

import xarray as xr
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates

from strato import __version__
from strato.auth import Principal, Scope
from strato.capabilities import NavLink
from strato.data import catalogs
from strato.data.service import DataService
from strato.http.security import Authenticator
from strato.settings import Settings


def wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept.split(",")[0]


def quicklook_var(ds: xr.Dataset) -> str | None:
    """The first data variable with a lat/lon field, for the page's map."""
    lat, lon = catalogs.lat_lon(ds)
    if lat is None or lon is None:
        return None
    # The dimensions the coordinates span: themselves on a regular grid, (j, i) or (y, x)
    # under 2-D latitude and longitude on a curvilinear one.
    spans = {*lat.dims, *lon.dims}
    for name, var in ds.data_vars.items():
        if spans <= set(var.dims) and "bnds" not in str(name):
            return str(name)
    return None


def make_pages_router(
    service: DataService,
    auth: Authenticator,
    settings: Settings,
    templates: Jinja2Templates,
    nav: list[NavLink],
) -> APIRouter:
    router = APIRouter()
    read = Depends(auth.require(Scope.READ))

    def page(request: Request, name: str, context: dict[str, Any]) -> HTMLResponse:
        return templates.TemplateResponse(
            request, name, {"nav": nav, "settings": settings, "version": __version__, **context}
        )

    def base_url(request: Request) -> str:
        return (settings.public_url or str(request.base_url)).rstrip("/")

    @router.get(
        "/datasets",
        tags=["datasets"],
        summary="Ids of the served datasets (an HTML list for browsers)",
        response_model=list[str],
    )
    def datasets(request: Request, _: Principal = read) -> Response:
        if not wants_html(request):
            return JSONResponse(service.registry.ids())
        return page(request, "data/list.html", {"datasets": service.statuses()})

    @router.get(
        "/datasets/{dataset_id}/",
        tags=["datasets"],
        summary="HTML summary of a dataset",
        response_class=HTMLResponse,
    )
    def dataset_page(dataset_id: str, request: Request, _: Principal = read) -> HTMLResponse:
        opened = service.cache.get(dataset_id)
        ds = opened.decoded
        base = base_url(request)
        href = f"{base}/datasets/{dataset_id}"
        with xr.set_options(display_style="html"):  # type: ignore[no-untyped-call]
            repr_html = ds._repr_html_()
        start, end = catalogs.time_range(ds)
        return page(
            request,
            "data/page.html",
            {
                "id": dataset_id,
                "title": opened.registration.title,
                "ds": ds,
                "dims": dict(ds.sizes),
                "variables": [(str(n), v) for n, v in ds.variables.items() if n not in ds.dims],
                "attrs": catalogs.jsonable_attrs(dict(ds.attrs)),
                "quicklook": quicklook_var(ds),
                "files": len(opened.files),
                "start": start,
                "end": end,
                "href": href,
                "base": base,
                "repr_html": repr_html,
            },
        )

    return router
