"""Web pages of the node's catalog: faceted search, item pages and the live activity view.

Server-rendered, so they work without JavaScript; only the activity view refreshes itself,
polling ``/api/catalog/activity``. Facet filters use ESGF's bare names (``source_id``), as
the legacy search does, so one filter covers CMIP6 and CORDEX alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from strato import __version__
from strato.auth import Scope
from strato.capabilities import NavLink
from strato.catalog.ingest.activity import MAX_ACTIVITY, activity_json, item_path, recent_activity
from strato.catalog.search.esg_facets import Constraints, FacetVocabulary, all_of
from strato.catalog.search.esg_search import checksum_of, count_facets
from strato.catalog.search.search import CatalogSearch, SearchPage, SearchRequest
from strato.catalog.store import ItemStore
from strato.errors import InvalidInput, NotFound, StratoError
from strato.http.security import Authenticator
from strato.settings import Settings

PAGE_SIZE = 20
# The facets offered as filters, in this order; those no item has are left out.
PAGE_FACETS = (
    "project",
    "activity_id",
    "institution_id",
    "source_id",
    "experiment_id",
    "table_id",
    "variable_id",
    "frequency",
    "member_id",
    "domain_id",
    "driving_source_id",
    "grid_label",
)
# Values shown before a facet's list folds.
FACET_SHOWN = 8
MAX_Q = 500


# --- the search page ----------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogQuery:
    q: str = ""
    selected: dict[str, list[str]] = field(default_factory=dict)
    page: int = 1

    def href(self, *, page: int = 1, toggle: tuple[str, str] | None = None) -> str:
        """This query's page URL: another page, or one facet value added or removed."""
        selected = {name: list(values) for name, values in self.selected.items()}
        if toggle is not None:
            name, value = toggle
            values = selected.setdefault(name, [])
            if value in values:
                values.remove(value)
            else:
                values.append(value)
        pairs: list[tuple[str, str]] = [("q", self.q)] if self.q else []
        pairs += [(name, value) for name, values in selected.items() for value in values]
        if page > 1:
            pairs.append(("page", str(page)))
        return "/catalog" + (f"?{urlencode(pairs)}" if pairs else "")


def parse_catalog_params(
    params: Sequence[tuple[str, str]], vocabulary: FacetVocabulary
) -> CatalogQuery:
    q: list[str] = []
    page = 1
    selected: dict[str, list[str]] = {}
    for name, value in params:
        if name == "q":
            if len(value) > MAX_Q:
                raise InvalidInput(f"the search text has at most {MAX_Q} characters")
            if value.strip():
                q.append(value.strip())
        elif name == "page":
            try:
                page = int(value)
            except ValueError:
                raise InvalidInput(f"page is a whole number, not {value!r}") from None
            if not 1 <= page <= 1_000_000:
                raise InvalidInput(f"page must be 1 or more, not {page}")
        else:
            vocabulary.properties(name, where="the filters")
            if value and value not in selected.setdefault(name, []):
                selected[name].append(value)
    return CatalogQuery(" ".join(q), {k: v for k, v in selected.items() if v}, page)


def _request(
    query: CatalogQuery,
    vocabulary: FacetVocabulary,
    *,
    without: str | None = None,
    offset: int = 0,
) -> SearchRequest | None:
    """The search of ``query`` (less the facet ``without``); None if nothing can match."""
    constraints = Constraints()
    for name, values in query.selected.items():
        if name != without:
            constraints.add(name, values, negated=False)
    clauses = constraints.to_cql2(vocabulary)
    if clauses is None:
        return None
    # Comma-separated terms, OR'ed, as the STAC API's q.
    terms = tuple(t.strip() for t in query.q.split(",") if t.strip())
    return SearchRequest(filter=all_of(clauses), q=terms, limit=PAGE_SIZE, offset=offset)


@dataclass
class FacetValueView:
    key: str
    count: int
    selected: bool
    href: str


@dataclass
class FacetView:
    name: str
    values: list[FacetValueView]
    shown: int = FACET_SHOWN


def _facet_views(
    search: CatalogSearch, query: CatalogQuery, vocabulary: FacetVocabulary
) -> list[FacetView]:
    present = set(vocabulary.present)
    names = [n for n in PAGE_FACETS if n in present]
    base = count_facets(search, _request(query, vocabulary), names, vocabulary)
    views = []
    for name in names:
        counts = base[name]
        if name in query.selected:
            # Counted as if this facet were not chosen, so more of its values can be added.
            wider = _request(query, vocabulary, without=name)
            counts = count_facets(search, wider, [name], vocabulary)[name]
            for value in query.selected[name]:
                counts.setdefault(value, 0)
        if not counts:
            continue
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        values = [
            FacetValueView(
                key,
                count,
                key in query.selected.get(name, []),
                query.href(toggle=(name, key)),
            )
            for key, count in ordered
        ]
        # Chosen values first, so they are never folded away.
        values.sort(key=lambda v: not v.selected)
        views.append(FacetView(name, values))
    return views


def _time_range(props: Mapping[str, Any]) -> tuple[str, str]:
    """The dates the item covers: its range's ends, or its instant twice."""
    start, end = props.get("start_datetime"), props.get("end_datetime")
    if isinstance(start, str) and isinstance(end, str):
        return start[:10], end[:10]
    instant = props.get("datetime")
    return (instant[:10], instant[:10]) if isinstance(instant, str) else ("", "")


@dataclass
class ResultView:
    id: str
    collection: str
    title: str
    start: str
    end: str
    version: str
    latest: bool
    retracted: bool
    href: str


def _result(item: Mapping[str, Any]) -> ResultView:
    props = item.get("properties")
    props = props if isinstance(props, dict) else {}
    item_id, collection = str(item.get("id", "")), str(item.get("collection", ""))
    return ResultView(
        id=item_id,
        collection=collection,
        title=str(props.get("title") or ""),
        start=_time_range(props)[0],
        end=_time_range(props)[1],
        version=str(props.get("version") or ""),
        latest=props.get("latest") is not False,
        retracted=props.get("retracted") is True,
        href=item_path(collection, item_id),
    )


# --- the item page ------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return str(value)


def file_size(size: Any) -> str:
    if not isinstance(size, int | float) or isinstance(size, bool) or size < 0:
        return ""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return ""


@dataclass
class AssetView:
    key: str
    href: str
    type: str
    size: str
    size_bytes: str
    checksum: str
    checksum_type: str
    tracking_id: str
    alternates: list[tuple[str, str]]


def _assets(item: Mapping[str, Any]) -> list[AssetView]:
    assets = item.get("assets")
    views = []
    for key, asset in (assets if isinstance(assets, dict) else {}).items():
        if not isinstance(asset, dict):
            continue
        checksum = checksum_of(asset.get("file:checksum"))
        alternates = asset.get("alternate")
        size = asset.get("file:size")
        views.append(
            AssetView(
                key=str(key),
                href=str(asset.get("href") or ""),
                type=str(asset.get("type") or ""),
                size=file_size(size),
                size_bytes=str(size) if isinstance(size, int) else "",
                checksum=checksum[0] if checksum else "",
                checksum_type=checksum[1] if checksum else "",
                tracking_id=", ".join(
                    str(v) for k, v in asset.items() if str(k).endswith(":tracking_id")
                ),
                alternates=[
                    (str(name), str(alt.get("href") or ""))
                    for name, alt in (alternates if isinstance(alternates, dict) else {}).items()
                    if isinstance(alt, dict)
                ],
            )
        )
    return views


# --- the router ---------------------------------------------------------------------------


def make_catalog_pages_router(
    search: CatalogSearch,
    store: ItemStore,
    settings: Settings,
    templates: Jinja2Templates,
    nav: list[NavLink],
    auth: Authenticator,
) -> APIRouter:
    # Readers as the rest of the platform's pages: anyone, unless anonymous reading is off.
    router = APIRouter(dependencies=[Depends(auth.require(Scope.READ))])

    def page(
        request: Request, name: str, context: dict[str, Any], status: int = 200
    ) -> HTMLResponse:
        return templates.TemplateResponse(
            request,
            name,
            {"nav": nav, "settings": settings, "version": __version__, **context},
            status_code=status,
        )

    def message(request: Request, exc: StratoError, status: int) -> HTMLResponse:
        return page(
            request,
            "catalog/message.html",
            {"status": status, "heading": exc.title, "detail": exc.detail},
            status,
        )

    @router.get("/catalog", response_class=HTMLResponse, include_in_schema=False)
    def catalog(request: Request) -> HTMLResponse:
        # The facets as items have them now: a new project's show up without a restart.
        vocabulary = FacetVocabulary(search.aggregations())
        try:
            query = parse_catalog_params(request.query_params.multi_items(), vocabulary)
            offset = (query.page - 1) * PAGE_SIZE
            wanted = _request(query, vocabulary, offset=offset)
            found = search.search(wanted) if wanted else SearchPage([], 0)
            facets = _facet_views(search, query, vocabulary)
        except InvalidInput as exc:
            return message(request, exc, 400)
        pages = max(1, math.ceil(found.matched / PAGE_SIZE))
        return page(
            request,
            "catalog/search.html",
            {
                "query": query,
                "results": [_result(item) for item in found.items],
                "matched": found.matched,
                "first": offset + 1,
                "last": offset + len(found.items),
                "pages": pages,
                "prev_href": query.href(page=query.page - 1) if query.page > 1 else None,
                "next_href": query.href(page=query.page + 1) if query.page < pages else None,
                "facets": facets,
                "clear_href": "/catalog" + (f"?{urlencode({'q': query.q})}" if query.q else ""),
            },
        )

    @router.get(
        "/catalog/collections/{collection_id}/items/{item_id}",
        response_class=HTMLResponse,
        include_in_schema=False,
    )
    def item_page(request: Request, collection_id: str, item_id: str) -> HTMLResponse:
        try:
            item = store.get_item(collection_id, item_id)
        except NotFound as exc:
            return message(request, exc, 404)
        props = item.get("properties")
        props = props if isinstance(props, dict) else {}
        stac = f"/stac/collections/{quote(collection_id, safe='')}/items/{quote(item_id, safe='')}"
        return page(
            request,
            "catalog/item.html",
            {
                "item": _result(item),
                "properties": [(str(k), _text(v)) for k, v in props.items()],
                "assets": _assets(item),
                "stac_href": stac,
                "esg_href": "/esg-search/search?" + urlencode({"id": item_id, "fields": "*"}),
                "bbox": _text(item.get("bbox")),
            },
        )

    @router.get("/catalog/activity", response_class=HTMLResponse, include_in_schema=False)
    def activity_page(request: Request) -> HTMLResponse:
        # Read by hand: a bad value is no reason to refuse the page.
        errors = request.query_params.get("errors", "").lower() in ("true", "1", "on", "yes")
        activity = recent_activity(store.sessions, limit=50, errors_only=errors)
        return page(
            request,
            "catalog/activity.html",
            {"activity": activity_json(activity), "errors": errors},
        )

    @router.get(
        "/api/catalog/activity",
        tags=["catalog"],
        summary="Recent events this node applied or rejected, newest first",
    )
    def activity_api(
        limit: Annotated[int, Query(ge=1, le=MAX_ACTIVITY, description="Most events")] = 50,
        errors: Annotated[bool, Query(description="Only rejected events")] = False,
    ) -> dict[str, Any]:
        return activity_json(recent_activity(store.sessions, limit=limit, errors_only=errors))

    return router
