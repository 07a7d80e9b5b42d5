"""Links of the STAC API's documents, all under the node's public STAC root URL.

Items arrive with the links of the node that published them; the hierarchy links (self,
parent, collection, root) are replaced by this node's, others (licence, alternates) kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

JSON = "application/json"
GEOJSON = "application/geo+json"
SCHEMA = "application/schema+json"
# Where the API serves its OpenAPI document with the media type of its version.
SERVICE_DESC = "api"
HTML = "text/html"

HIERARCHY = frozenset({"self", "parent", "collection", "root"})


def segment(value: str) -> str:
    """One path segment: item ids may hold characters that are not safe in a path."""
    return quote(value, safe="")


def link(rel: str, href: str, media_type: str = JSON, **extra: Any) -> dict[str, Any]:
    return {"rel": rel, "type": media_type, "href": href, **extra}


def openapi_type(version: str) -> str:
    """The media type of an OpenAPI document of ``version`` (``3.1.0``: ``...version=3.1``)."""
    return f"application/vnd.oai.openapi+json;version={'.'.join(version.split('.')[:2])}"


def landing_links(
    root: str, site: str, aggregations: Sequence[str], openapi_version: str
) -> list[dict[str, Any]]:
    """``root`` is the STAC root (``.../stac``), ``site`` the node's base URL."""
    return [
        link("self", f"{root}/", title="This catalog"),
        link("root", f"{root}/", title="This catalog"),
        link("data", f"{root}/collections", title="Collections"),
        link("conformance", f"{root}/conformance", title="Conformance classes"),
        link("search", f"{root}/search", GEOJSON, method="GET", title="Item search"),
        link("search", f"{root}/search", GEOJSON, method="POST", title="Item search"),
        link(
            "http://www.opengis.net/def/rel/ogc/1.0/queryables",
            f"{root}/queryables",
            SCHEMA,
            title="Queryables",
        ),
        link(
            "aggregate",
            f"{root}/aggregate",
            title="Aggregate",
            method="GET",
            aggregations=list(aggregations),
        ),
        link("aggregations", f"{root}/aggregations", title="Aggregations"),
        link(
            "service-desc",
            f"{root}/{SERVICE_DESC}",
            openapi_type(openapi_version),
            title="OpenAPI description",
        ),
        link("service-doc", f"{site}/docs", HTML, title="API documentation"),
    ]


def collection_links(root: str, collection_id: str) -> list[dict[str, Any]]:
    href = f"{root}/collections/{segment(collection_id)}"
    return [
        link("self", href),
        link("parent", f"{root}/"),
        link("root", f"{root}/"),
        link("items", f"{href}/items", GEOJSON),
        link("http://www.opengis.net/def/rel/ogc/1.0/queryables", f"{href}/queryables", SCHEMA),
        link("aggregate", f"{href}/aggregate", method="GET"),
        link("aggregations", f"{href}/aggregations"),
    ]


def with_collection_links(collection: Mapping[str, Any], root: str) -> dict[str, Any]:
    cid = str(collection.get("id", ""))
    kept = [
        lk
        for lk in collection.get("links") or []
        if isinstance(lk, Mapping)
        and lk.get("rel") not in HIERARCHY | {"items", "aggregate", "aggregations"}
        and "queryables" not in str(lk.get("rel"))
    ]
    return {**collection, "links": collection_links(root, cid) + kept}


def item_links(root: str, collection_id: str, item_id: str) -> list[dict[str, Any]]:
    collection = f"{root}/collections/{segment(collection_id)}"
    return [
        link("self", f"{collection}/items/{segment(item_id)}", GEOJSON),
        link("parent", collection),
        link("collection", collection),
        link("root", f"{root}/"),
    ]


def with_item_links(item: Mapping[str, Any], root: str, collection_id: str) -> dict[str, Any]:
    links = item.get("links")
    kept = [
        lk
        for lk in (links if isinstance(links, list) else [])
        if isinstance(lk, Mapping) and lk.get("rel") not in HIERARCHY
    ]
    own = item_links(root, collection_id, str(item.get("id", "")))
    return {**item, "links": own + kept}


def url_with(base: str, params: Iterable[tuple[str, str]], **replace: str | None) -> str:
    """``base`` with the query ``params``, ``replace``'s keys replaced (None: removed)."""
    kept = [(k, v) for k, v in params if k not in replace]
    kept += [(k, v) for k, v in replace.items() if v is not None]
    return f"{base}?{urlencode(kept)}" if kept else base


def get_page_links(
    href: str,
    params: Sequence[tuple[str, str]],
    next_token: str | None,
    prev_token: str | None,
    root: str,
) -> list[dict[str, Any]]:
    """self/root and next/prev of a page asked for with GET: the same query, another token."""
    links = [link("self", url_with(href, params), GEOJSON), link("root", f"{root}/")]
    if next_token:
        links.append(link("next", url_with(href, params, token=next_token), GEOJSON, method="GET"))
    if prev_token:
        links.append(link("prev", url_with(href, params, token=prev_token), GEOJSON, method="GET"))
    return links


def post_page_links(
    href: str, next_token: str | None, prev_token: str | None, root: str
) -> list[dict[str, Any]]:
    """next/prev of a POST search: the same body with another token (``merge``)."""
    links = [link("self", href, GEOJSON), link("root", f"{root}/")]
    for rel, token in (("next", next_token), ("prev", prev_token)):
        if token:
            links.append(link(rel, href, GEOJSON, method="POST", body={"token": token}, merge=True))
    return links
