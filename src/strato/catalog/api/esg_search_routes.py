"""``/esg-search/search``: ESGF's legacy Solr-style search over this node's catalog."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from strato.auth import Scope
from strato.catalog.search.esg_search import SOLR_JSON, EsgSearch
from strato.catalog.search.search import CatalogSearch
from strato.catalog.settings import CatalogSettings
from strato.http.security import Authenticator
from strato.settings import Settings


def make_esg_search_router(
    search: CatalogSearch, settings: Settings, auth: Authenticator
) -> APIRouter:
    router = APIRouter(tags=["ESGF search"], dependencies=[Depends(auth.require(Scope.READ))])
    esg = EsgSearch(
        search, node_name=settings.node_name, max_limit=CatalogSettings.of(settings).max_limit
    )

    def answer(request: Request) -> JSONResponse:
        base = (settings.public_url or str(request.base_url)).rstrip("/")
        body: dict[str, Any] = esg.run(request.query_params.multi_items(), base_url=base)
        return JSONResponse(body)

    @router.get(
        "/esg-search/search",
        summary="ESGF search (Solr-style parameters, Solr JSON answer)",
        description=(
            "The legacy ESGF search API that esgf-pyclient speaks. Any facet is a "
            "constraint (`variable_id=tas&variable_id=pr` or `variable_id=tas,pr`: OR "
            "within a facet, AND across facets; `variable_id!=tas` excludes). Facet names "
            "are ESGF's bare names (`source_id`), matching `cmip6:source_id` and "
            "`cordex:source_id`. `type=File` lists the files of the datasets named by "
            "`dataset_id`, `type=Aggregation` their Zarr stores. Records have the fields "
            "of ESGF's index nodes (`activity_drs`, `directory_format_template_`, `url` "
            "triples). Searches this node only (`distrib` is ignored)."
        ),
        responses={400: {"description": "A parameter is not valid; the problem names it"}},
    )
    # The parameters are declared for the API documentation only: parse_params reads and
    # checks them all from the query string, along with any facet as a constraint.
    def esg_search(
        request: Request,
        type: Annotated[
            str | None, Query(description="Dataset (default), File or Aggregation")
        ] = None,
        format: Annotated[str | None, Query(description=f"{SOLR_JSON} only")] = None,
        limit: Annotated[str | None, Query(description="Records per page, 0..10000")] = None,
        offset: Annotated[str | None, Query(description="Records to skip")] = None,
        facets: Annotated[
            str | None, Query(description="Facets to count, comma-separated, or *")
        ] = None,
        fields: Annotated[str | None, Query(description="Fields of each record, or *")] = None,
        query: Annotated[str | None, Query(description="Free text")] = None,
        latest: Annotated[str | None, Query(description="true or false")] = None,
        retracted: Annotated[str | None, Query(description="true or false")] = None,
        replica: Annotated[str | None, Query(description="true or false")] = None,
        distrib: Annotated[str | None, Query(description="Ignored: this node only")] = None,
        start: Annotated[str | None, Query(description="Data at or after this date-time")] = None,
        end: Annotated[str | None, Query(description="Data at or before this date-time")] = None,
        bbox: Annotated[str | None, Query(description="[west,south,east,north]")] = None,
    ) -> JSONResponse:
        return answer(request)

    @router.get("/esg-search/search/", include_in_schema=False)
    def esg_search_slash(request: Request) -> JSONResponse:
        return answer(request)

    return router
