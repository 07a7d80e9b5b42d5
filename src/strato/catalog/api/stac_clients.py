"""What the STAC API's routes do: core, queryables and transactions (aggregation:
:mod:`strato.catalog.api.stac_aggregation`; the routes: :mod:`strato.catalog.api.stac_routes`).

The routes call these with the request and its parsed model
(:mod:`strato.catalog.api.stac_models`); they turn the parameters into a
:class:`SearchRequest` (:mod:`strato.catalog.api.stac_params`), ask :class:`CatalogSearch` or
the :class:`ItemStore`, and answer STAC documents with this node's links. Reads are
synchronous (the routes run them in the thread pool); writes publish events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import attr
from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from strato import jsonio
from strato.auth import Principal
from strato.catalog.api import stac_links as links
from strato.catalog.api import stac_params as params
from strato.catalog.api import stac_transactions as tx
from strato.catalog.api.stac_models import (
    CollectionsGetRequest,
    ItemsGetRequest,
    SearchGetRequest,
    SearchPostRequest,
)
from strato.catalog.ingest.publisher import EventPublisher
from strato.catalog.model.events import Event, Requester
from strato.catalog.model.item_limits import check_events
from strato.catalog.search.search import CatalogSearch, SearchPage, SearchRequest, parse_cql2_text
from strato.catalog.settings import CatalogSettings
from strato.catalog.store import ItemStore
from strato.errors import Conflict, NotFound
from strato.settings import Settings

STAC_VERSION = "1.0.0"
TOTAL_COUNT = "total_count"
# Set by the write routes' authentication dependency.
PRINCIPAL_STATE = "strato_principal"


@attr.s(kw_only=True)
class Urls:
    """The node's public base URL: the configured one, else the one the request came to."""

    settings: Settings = attr.ib()

    def site(self, request: Request) -> str:
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        return str(request.base_url).rstrip("/")

    def root(self, request: Request) -> str:
        return f"{self.site(request)}/stac"

    def here(self, request: Request) -> str:
        """The URL of this request, without its query, on the public base URL."""
        path = request.url.path
        root_path = str(request.scope.get("root_path") or "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        return f"{self.site(request)}{path}"


def openapi_version(request: Request) -> str:
    """The OpenAPI version of the app serving ``request`` (its service description)."""
    return str(getattr(request.app, "openapi_version", "3.1.0"))


class FastJSONResponse(JSONResponse):
    """A JSONResponse with the same body (compact UTF-8), written by orjson (jsonio):
    several times faster on pages of items. A response class is FastAPI's own way to
    choose the encoder; nothing is gone around."""

    def render(self, content: Any) -> bytes:
        return jsonio.dump_bytes(content)


def _geojson(body: dict[str, Any], status_code: int = 200) -> JSONResponse:
    return FastJSONResponse(body, status_code=status_code, media_type=links.GEOJSON)


@attr.s(kw_only=True)
class Parsed:
    """What a search asks for, and how to present its items."""

    search: SearchRequest = attr.ib()
    fields: params.Fields | None = attr.ib(default=None)


def parse_get(
    values: Mapping[str, Any],
    max_limit: int,
    *,
    check_limit: bool = True,
    text_parser: Callable[[str], dict[str, Any]] = parse_cql2_text,
) -> Parsed:
    """A GET query's values, by parameter name (:meth:`RequestModel.values`)."""
    cql2 = params.parse_filter(
        values.get("filter_expr"),
        values.get("filter_lang"),
        values.get("filter_crs"),
        text_parser=text_parser,
        default_lang="cql2-text",
    )
    search = params.search_request(
        max_limit=max_limit,
        collections=values.get("collections"),
        ids=values.get("ids"),
        bbox=values.get("bbox"),
        intersects=values.get("intersects"),
        datetime=values.get("datetime"),
        filter=cql2,
        query=params.parse_query(values.get("query")),
        q=values.get("q"),
        sortby=params.parse_sortby(values.get("sortby")),
        limit=values.get("limit"),
        token=values.get("token"),
        check_limit=check_limit,
    )
    return Parsed(search=search, fields=params.parse_fields_get(values.get("fields")))


def parse_post(
    body: Any,
    max_limit: int,
    *,
    check_limit: bool = True,
    text_parser: Callable[[str], dict[str, Any]] = parse_cql2_text,
) -> Parsed:
    """A POST body as its model has read it."""
    given = body.model_fields_set
    cql2 = params.parse_filter(
        getattr(body, "filter_expr", None),
        getattr(body, "filter_lang", None),
        getattr(body, "filter_crs", None),
        text_parser=text_parser,
        default_lang="cql2-json",
    )
    fields = None
    chosen = getattr(body, "fields", None)
    if "fields" in given and chosen is not None:
        fields = params.parse_fields_post(chosen.include, chosen.exclude)
    search = params.search_request(
        max_limit=max_limit,
        collections=body.collections,
        ids=body.ids,
        bbox=_post_bbox(body.bbox),
        intersects=body.intersects,
        datetime=body.datetime,
        filter=cql2,
        query=params.parse_query(getattr(body, "query", None)),
        q=getattr(body, "q", None),
        sortby=params.parse_sortby(getattr(body, "sortby", None)),
        limit=body.limit,
        token=getattr(body, "token", None),
        check_limit=check_limit,
    )
    return Parsed(search=search, fields=fields)


def _post_bbox(value: Any) -> list[Any] | None:
    """A POST body's bbox: a JSON array (the comma-separated text is the GET's form)."""
    if value is None:
        return None
    if not isinstance(value, list):
        shown = "text" if isinstance(value, str) else "a JSON value that is not an array"
        raise params.invalid("bbox", f"in a POST body is an array of 4 or 6 numbers, not {shown}")
    return value


@attr.s(kw_only=True)
class Presenter:
    """Items and collections as this node serves them: its links, the fields asked for."""

    urls: Urls = attr.ib()

    def item(
        self,
        item: Mapping[str, Any],
        root: str,
        fields: params.Fields | None = None,
        collection_id: str = "",
    ) -> dict[str, Any]:
        # An item published without its collection member is still linked to the one
        # the request was about.
        named = item.get("collection")
        collection = named if isinstance(named, str) else collection_id
        shown = links.with_item_links(item, root, collection)
        return params.select_fields(shown, fields) if fields is not None else shown

    def page(
        self,
        page: SearchPage,
        root: str,
        parsed: Parsed,
        page_links: list[dict[str, Any]],
    ) -> dict[str, Any]:
        only = parsed.search.collections
        collection_id = only[0] if len(only) == 1 else ""
        features = [self.item(it, root, parsed.fields, collection_id) for it in page.items]
        return {
            "type": "FeatureCollection",
            "features": features,
            "links": page_links,
            "numberMatched": page.matched,
            "numberReturned": len(features),
        }


@attr.s(kw_only=True)
class CoreClient:
    """Landing page, conformance, collections (with collection search), items, search."""

    store: ItemStore = attr.ib()
    search: CatalogSearch = attr.ib()
    settings: Settings = attr.ib()
    conformance_uris: list[str] = attr.ib(factory=list)

    @property
    def urls(self) -> Urls:
        return Urls(settings=self.settings)

    @property
    def presenter(self) -> Presenter:
        return Presenter(urls=self.urls)

    @property
    def max_limit(self) -> int:
        return self.search.max_limit

    @property
    def max_page_bytes(self) -> int:
        """Bytes of items a page holds at most; the rest is on the next page."""
        return CatalogSettings.of(self.settings).max_page_bytes

    def conformance_classes(self) -> list[str]:
        return sorted(set(self.conformance_uris))

    def landing_page(self, request: Request) -> JSONResponse:
        root = self.urls.root(request)
        names = [TOTAL_COUNT, *self.search.aggregations()]
        body = {
            "type": "Catalog",
            "stac_version": STAC_VERSION,
            "id": f"strato-{self.settings.node_name}",
            "title": f"strato STAC index node {self.settings.node_name!r}",
            "description": "Items this node applied from the ESGF event stream.",
            "conformsTo": self.conformance_classes(),
            "links": links.landing_links(
                root, self.urls.site(request), names, openapi_version(request)
            ),
        }
        return JSONResponse(body)

    def conformance(self) -> JSONResponse:
        return JSONResponse({"conformsTo": self.conformance_classes()})

    # --- collections ------------------------------------------------------------------

    def all_collections(self, request: Request, asked: CollectionsGetRequest) -> JSONResponse:
        root = self.urls.root(request)
        limit = params.parse_limit(asked.limit, self.max_limit)
        offset = asked.offset or 0
        if offset < 0:
            raise params.invalid("offset", f"must not be negative, not {offset}")
        found, matched = self.search.collections(
            q=params.parse_terms(asked.q, "q"),
            bbox=params.parse_bbox(asked.bbox),
            datetime=params.parse_interval(asked.datetime),
            limit=limit,
            offset=offset,
        )
        href = self.urls.here(request)
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "offset"]
        page_links = [links.link("self", links.url_with(href, request.query_params.multi_items()))]
        page_links.append(links.link("root", f"{root}/"))
        if offset + len(found) < matched:
            nxt = links.url_with(href, query, offset=str(offset + len(found)))
            page_links.append(links.link("next", nxt))
        if offset > 0:
            prev = links.url_with(href, query, offset=str(max(0, offset - limit)))
            page_links.append(links.link("prev", prev))
        return JSONResponse(
            {
                "collections": [links.with_collection_links(c, root) for c in found],
                "links": page_links,
                "numberMatched": matched,
                "numberReturned": len(found),
            }
        )

    def get_collection(self, request: Request, collection_id: str) -> JSONResponse:
        root = self.urls.root(request)
        collection = self.store.get_collection(collection_id)
        return JSONResponse(links.with_collection_links(collection, root))

    # --- items ------------------------------------------------------------------------

    def item_collection(self, request: Request, query: ItemsGetRequest) -> JSONResponse:
        root = self.urls.root(request)
        collection_id = query.collection_id
        self.store.get_collection(collection_id)
        parsed = parse_get(query.values(), self.max_limit, text_parser=self.search.parse_text)
        parsed = attr.evolve(parsed, search=in_collection(parsed.search, collection_id))
        page = self.search.search(parsed.search, max_bytes=self.max_page_bytes)
        page_links = links.get_page_links(
            self.urls.here(request),
            request.query_params.multi_items(),
            page.next_token,
            page.prev_token,
            root,
        )
        page_links.append(
            links.link("collection", f"{root}/collections/{links.segment(collection_id)}")
        )
        return _geojson(self.presenter.page(page, root, parsed, page_links))

    def get_item(self, request: Request, collection_id: str, item_id: str) -> JSONResponse:
        root = self.urls.root(request)
        item = self.store.get_item(collection_id, item_id)
        return _geojson(self.presenter.item(item, root, collection_id=collection_id))

    def get_search(self, request: Request, query: SearchGetRequest) -> JSONResponse:
        root = self.urls.root(request)
        parsed = parse_get(query.values(), self.max_limit, text_parser=self.search.parse_text)
        page = self.search.search(parsed.search, max_bytes=self.max_page_bytes)
        page_links = links.get_page_links(
            self.urls.here(request),
            request.query_params.multi_items(),
            page.next_token,
            page.prev_token,
            root,
        )
        return _geojson(self.presenter.page(page, root, parsed, page_links))

    def post_search(self, request: Request, search_request: SearchPostRequest) -> JSONResponse:
        root = self.urls.root(request)
        parsed = parse_post(search_request, self.max_limit, text_parser=self.search.parse_text)
        page = self.search.search(parsed.search, max_bytes=self.max_page_bytes)
        page_links = links.post_page_links(
            self.urls.here(request), page.next_token, page.prev_token, root
        )
        return _geojson(self.presenter.page(page, root, parsed, page_links))


def in_collection(search: SearchRequest, collection_id: str) -> SearchRequest:
    return replace(search, collections=(collection_id,))


@attr.s(kw_only=True)
class QueryablesClient:
    """Queryables: what filters may name, for all collections or one."""

    store: ItemStore = attr.ib()
    search: CatalogSearch = attr.ib()
    urls: Urls = attr.ib()

    def get_queryables(self, request: Request, collection_id: str | None = None) -> JSONResponse:
        schema = self.search.queryables(collection_id, url=self.urls.here(request))
        return JSONResponse(schema, media_type=links.SCHEMA)


@attr.s(kw_only=True)
class TransactionsClient:
    """Item writes as ESGF events on the bus, answered 202 with what to monitor; collections
    created on this node.

    Items are written only into a collection this node has, and a patch or retraction only
    to an item it has (404 otherwise): what a STAC client expects, and what lets a patch,
    which carries no item, be routed by the item's own topic.
    """

    publisher: EventPublisher = attr.ib()
    store: ItemStore = attr.ib()
    urls: Urls = attr.ib()
    max_items: int = attr.ib()
    max_item_bytes: int = attr.ib(default=1024 * 1024)

    def _who(self, request: Request) -> Requester:
        principal = getattr(request.state, PRINCIPAL_STATE, None)
        user = principal.user if isinstance(principal, Principal) else None
        return tx.requester(user, self.urls.site(request))

    async def _collection(self, collection_id: str) -> None:
        """NotFound (404) unless this node has the collection."""
        tx.check_ids(collection_id)
        await asyncio.to_thread(self.store.get_collection, collection_id)

    async def _item(self, collection_id: str, item_id: str) -> dict[str, dict[str, Any]]:
        """The item as this node has it, by id (NotFound, 404, if it has none)."""
        tx.check_ids(collection_id, item_id)
        return {item_id: await asyncio.to_thread(self.store.get_item, collection_id, item_id)}

    async def _publish(
        self,
        request: Request,
        request_id: str,
        events: Sequence[Event],
        items: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> JSONResponse:
        check_events(events, self.max_item_bytes)
        await self.publisher.publish(events, items=items)
        monitor = f"{self.urls.root(request)}/publications/{links.segment(request_id)}"
        return JSONResponse(
            tx.accepted(request_id, events, monitor),
            status_code=202,
            headers={"Location": monitor},
        )

    async def create_item(
        self, request: Request, collection_id: str, item: dict[str, Any]
    ) -> JSONResponse:
        await self._collection(collection_id)
        request_id = tx.new_request_id()
        events = await asyncio.to_thread(
            tx.create_events,
            collection_id,
            item,
            self._who(request),
            request_id,
            max_items=self.max_items,
        )
        return await self._publish(request, request_id, events)

    async def update_item(
        self, request: Request, collection_id: str, item_id: str, item: dict[str, Any]
    ) -> JSONResponse:
        await self._collection(collection_id)
        request_id = tx.new_request_id()
        events = await asyncio.to_thread(
            tx.update_events, collection_id, item_id, item, self._who(request), request_id
        )
        return await self._publish(request, request_id, events)

    async def patch_item(
        self, request: Request, collection_id: str, item_id: str, patch: Any
    ) -> JSONResponse:
        content_type = request.headers.get("content-type")
        if isinstance(patch, bytes | bytearray):
            raise HTTPException(
                415, f"a patch is sent as {', '.join(tx.PATCH_TYPES)}, not {content_type}"
            )
        await self._collection(collection_id)
        request_id = tx.new_request_id()
        events = await asyncio.to_thread(
            tx.patch_events,
            collection_id,
            item_id,
            patch,
            content_type,
            self._who(request),
            request_id,
        )
        items = await self._item(collection_id, item_id)
        return await self._publish(request, request_id, events, items)

    async def delete_item(self, request: Request, collection_id: str, item_id: str) -> JSONResponse:
        tx.check_ids(collection_id, item_id)
        await self._collection(collection_id)
        items = await self._item(collection_id, item_id)
        request_id = tx.new_request_id()
        events = tx.retract_events(collection_id, item_id, self._who(request), request_id)
        return await self._publish(request, request_id, events, items)

    async def create_collection(self, request: Request, collection: Any) -> JSONResponse:
        """Create a collection on this node (201; 409 if it has one of that id).

        Not an event: ESGF's events carry items only. Other nodes create a collection
        when they apply the first event that names it, as for every publisher's events.
        """
        checked = tx.checked_collection(collection)
        collection_id = checked["id"]
        href = f"{self.urls.root(request)}/collections/{links.segment(collection_id)}"
        if not await asyncio.to_thread(self._create, checked):
            raise Conflict(f"collection {collection_id!r} exists; items are added to it")
        return JSONResponse(
            links.with_collection_links(checked, self.urls.root(request)),
            status_code=201,
            headers={"Location": href},
        )

    def _create(self, collection: dict[str, Any]) -> bool:
        try:
            self.store.get_collection(collection["id"])
        except NotFound:
            self.store.upsert_collection(collection)
            return True
        return False
