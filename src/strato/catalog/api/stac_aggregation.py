"""The aggregation extension's backend client: which aggregations a search offers, and their
answers (counts per facet value, total_count), for the aggregation routes
(:mod:`strato.catalog.api.stac_routes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import attr
from fastapi import Request
from fastapi.responses import JSONResponse

from strato.caching import Kept
from strato.catalog.api import stac_links as links
from strato.catalog.api import stac_params as params
from strato.catalog.api.stac_clients import (
    TOTAL_COUNT,
    FastJSONResponse,
    Urls,
    in_collection,
    parse_get,
    parse_post,
)
from strato.catalog.api.stac_models import AggregateGetRequest, AggregatePostRequest
from strato.catalog.search.search import CatalogSearch, SearchRequest
from strato.catalog.store import ItemStore


@attr.s(kw_only=True)
class AggregationNames:
    """The search's aggregation names, kept a while: reading them is a query of its own.

    Read again when older than ``ttl`` seconds or when a name asked for is not among
    them, so a facet that has just appeared is known at once.
    """

    search: CatalogSearch = attr.ib()
    ttl: float = attr.ib(default=30.0)
    # (the names as a set, to look up; as the search lists them, to answer)
    _names: Kept[tuple[frozenset[str], list[str]]] = attr.ib(init=False)

    @_names.default
    def _kept(self) -> Kept[tuple[frozenset[str], list[str]]]:
        def read() -> tuple[frozenset[str], list[str]]:
            names = self.search.aggregations()
            return frozenset(names), names

        return Kept(read, self.ttl)

    def known(self, wanted: Sequence[str] = ()) -> list[str]:
        names, listed = self._names.get()
        if any(w not in names for w in wanted if w != TOTAL_COUNT):
            names, listed = self._names.get(refresh=True)
        return [TOTAL_COUNT, *listed]


@attr.s(kw_only=True)
class AggregationClient:
    """Term counts of facets over the items a search matches (aggregation extension)."""

    store: ItemStore = attr.ib()
    search: CatalogSearch = attr.ib()
    urls: Urls = attr.ib()
    names: AggregationNames = attr.ib()

    @names.default
    def _names_of_search(self) -> AggregationNames:
        return AggregationNames(search=self.search)

    def _links(self, request: Request) -> list[dict[str, Any]]:
        root = self.urls.root(request)
        return [
            links.link("root", f"{root}/"),
            links.link(
                "self", links.url_with(self.urls.here(request), request.query_params.multi_items())
            ),
        ]

    def get_aggregations(self, request: Request, collection_id: str | None = None) -> JSONResponse:
        if collection_id is not None:
            self.store.get_collection(collection_id)
        described = [{"name": TOTAL_COUNT, "data_type": "integer"}] + [
            {"name": name, "data_type": "frequency_distribution"}
            for name in self.search.aggregations()
        ]
        return JSONResponse(
            {
                "type": "AggregationCollection",
                "aggregations": described,
                "links": self._links(request),
            }
        )

    def aggregate(
        self,
        request: Request,
        asked: AggregateGetRequest | AggregatePostRequest,
        collection_id: str | None = None,
    ) -> JSONResponse:
        """``asked`` is a GET query or a POST body."""
        if isinstance(asked, AggregatePostRequest):
            parsed = parse_post(
                asked, self.search.max_limit, check_limit=False, text_parser=self.search.parse_text
            )
        else:
            parsed = parse_get(
                asked.values(),
                self.search.max_limit,
                check_limit=False,
                text_parser=self.search.parse_text,
            )
        wanted = list(asked.aggregations or [])
        search = parsed.search
        if collection_id is not None:
            self.store.get_collection(collection_id)
            search = in_collection(search, collection_id)
        wanted = [w.strip() for w in wanted if w.strip()]
        known = self.names.known(wanted)
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise params.invalid(
                "aggregations",
                f"unknown {', '.join(map(repr, unknown))}; known: {', '.join(known)}",
            )
        terms = [w for w in wanted if w != TOTAL_COUNT]
        counted = {a.name: a for a in self.search.aggregate(search, terms)} if terms else {}
        result: list[dict[str, Any]] = []
        for name in wanted:
            if name == TOTAL_COUNT:
                total = self.search.search(_first_only(search)).matched
                result.append({"name": name, "data_type": "integer", "value": total})
                continue
            found = counted.get(name)
            buckets = found.buckets if found is not None else []
            result.append(
                {
                    "name": name,
                    "data_type": "frequency_distribution",
                    "buckets": [
                        {"key": b.key, "data_type": "string", "frequency": b.count} for b in buckets
                    ],
                }
            )
        return FastJSONResponse(
            {"type": "AggregationCollection", "aggregations": result, "links": self._links(request)}
        )


def _first_only(search: SearchRequest) -> SearchRequest:
    return replace(search, limit=1, token=None, sortby=())
