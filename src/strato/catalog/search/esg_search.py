"""The legacy ESGF search (``/esg-search/search``) over this node's catalog.

ESGF's index nodes answered Solr-style queries (``project=CMIP6&variable_id=tas&facets=
source_id&limit=10``) with Solr JSON; esgf-pyclient, intake-esgf's older paths and many
scripts still send them. This module turns such parameters into a :class:`SearchRequest`
(facet constraints become a CQL2 JSON filter) and the page that comes back into the
Solr JSON those clients read. No FastAPI here: the route hands over the query string's
``(name, value)`` pairs.

Semantics, as ESGF's search had them: values of one facet are OR'ed
(``variable_id=tas&variable_id=pr`` or ``variable_id=tas,pr``), facets are AND'ed, and
``variable_id!=tas`` excludes. ESGF's facet names are bare (``source_id``): each stands for
the item properties of every project that has it (``cmip6:source_id``, ``cordex:source_id``),
and its counts are the sum over them.

``type=File`` and ``type=Aggregation`` are served for named datasets (``dataset_id=...``,
what esgf-pyclient's ``file_context()`` and ``aggregation_context()`` and intake-esgf's file
listing send): each data asset of the item is one file, each Zarr store of the whole
dataset one aggregation (:mod:`strato.catalog.search.esg_records`). A file search over facets
alone would need every matching item's assets, so it answers 400.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from strato.catalog.model.geometry import GeometryError, check_bbox
from strato.catalog.search.esg_facets import (
    ALIASES,
    Constraints,
    FacetVocabulary,
    all_of,
    check_constraint,
    record_values,
)
from strato.catalog.search.esg_records import (
    DocContext,
    aggregation_docs,
    as_list,
    dataset_doc,
    file_docs,
)
from strato.catalog.search.esg_records import checksum_of as checksum_of  # what pages show
from strato.catalog.search.search import CatalogSearch, SearchRequest
from strato.catalog.store import parse_datetime, words
from strato.errors import InvalidInput

SOLR_JSON = "application/solr+json"
DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000
# More datasets than this in one file search is a crawl, not a lookup.
MAX_FILE_DATASETS = 100

# Parameters that are not constraints. ``shards`` and ``distrib`` are accepted and ignored:
# this node answers for itself (esgf-pyclient sends both).
_SYSTEM = frozenset(
    {
        "type",
        "format",
        "offset",
        "limit",
        "facets",
        "fields",
        "latest",
        "retracted",
        "replica",
        "distrib",
        "shards",
        "query",
        "start",
        "end",
        "from",
        "to",
        "bbox",
    }
)
SearchType = Literal["Dataset", "File", "Aggregation"]
SEARCH_TYPES: tuple[SearchType, ...] = ("Dataset", "File", "Aggregation")
# --- parameters ---------------------------------------------------------------------------


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InvalidInput(f"parameter {name!r} is true or false, not {value!r}")


def _int(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise InvalidInput(f"parameter {name!r} is a whole number, not {value!r}") from None
    if not low <= number <= high:
        raise InvalidInput(f"parameter {name!r} must be within {low}..{high}, not {number}")
    return number


def _instant(name: str, value: str) -> datetime:
    text = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        text += "T00:00:00Z"
    elif re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?", text):
        # ESGF's examples leave the zone out; they mean UTC.
        text += "Z"
    parsed = parse_datetime(text)
    if parsed is None:
        raise InvalidInput(
            f"parameter {name!r} is a date-time like 2000-01-01T00:00:00Z, not {value!r}"
        )
    return parsed


def _bbox(value: str) -> tuple[float, float, float, float]:
    parts = [p for p in re.split(r"[\s,]+", value.strip().strip("[]")) if p]
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) != 4:
        raise InvalidInput(f"parameter 'bbox' is [west,south,east,north], not {value!r}")
    try:
        return check_bbox(numbers)
    except GeometryError:
        # esg-search's own wording, which its clients have seen for years.
        raise InvalidInput(f"parameter 'bbox' is out of range: {value!r}") from None


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _free_text(text: str, constraints: Constraints, vocabulary: FacetVocabulary) -> list[str]:
    """Words of ``query``; Solr's ``name:value`` terms become constraints, ``*:*`` nothing."""
    terms = []
    for word in re.findall(r'"[^"]*"|\S+', text):
        if word in ("*", "*:*", "AND", "OR", "&&", "||"):
            continue
        name, sep, value = word.partition(":")
        if sep and value and name != "*":
            check_constraint(name, vocabulary, where="query")
            constraints.add(name, record_values(name, [value.strip('"')]), negated=False)
            continue
        term = word.strip('"')
        if not words(term):
            raise InvalidInput(f"parameter 'query': {term!r} has no word to search for")
        terms.append(term)
    return terms


@dataclass
class EsgQuery:
    """One legacy search, parsed."""

    type: SearchType = "Dataset"
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    facets: list[str] = field(default_factory=list)
    fields: list[str] | None = None
    constraints: Constraints = field(default_factory=Constraints)
    flags: dict[str, bool] = field(default_factory=dict)
    replica: bool | None = None
    q: list[str] = field(default_factory=list)
    interval: tuple[datetime | None, datetime | None] | None = None
    # from/to: when this node last wrote the record (Solr's _timestamp).
    indexed: tuple[datetime | None, datetime | None] | None = None
    bbox: tuple[float, float, float, float] | None = None
    query_text: str | None = None

    def request(
        self, vocabulary: FacetVocabulary, *, limit: int, offset: int
    ) -> SearchRequest | None:
        """The search to run; None when its constraints cannot match anything."""
        clauses = self.constraints.to_cql2(vocabulary)
        if clauses is None or self.replica is True:
            # Replicas are alternates of the assets of one record here, never records.
            return None
        for name, value in self.flags.items():
            clauses.append({"op": "=", "args": [{"property": name}, value]})
        return SearchRequest(
            bbox=self.bbox,
            datetime=self.interval,
            indexed=self.indexed,
            filter=all_of(clauses),
            q=tuple(self.q),
            limit=limit,
            offset=offset,
        )


def parse_params(
    params: Sequence[tuple[str, str]],
    vocabulary: FacetVocabulary,
    *,
    max_limit: int = MAX_LIMIT,
) -> EsgQuery:
    """A legacy search from its query string's ``(name, value)`` pairs, in order.

    A name ending in ``!`` is a negated constraint: ``variable_id!=tas`` arrives as
    ``("variable_id!", "tas")``.
    """
    query = EsgQuery()
    seen: set[str] = set()
    free_text: list[str] = []
    for raw_name, value in params:
        negated = raw_name.endswith("!")
        name = raw_name[:-1] if negated else raw_name
        if not name:
            raise InvalidInput(f"a parameter without a name: {raw_name!r}={value!r}")
        if name in _SYSTEM:
            if negated:
                raise InvalidInput(f"parameter {name!r} cannot be negated with '!='")
            if name not in ("facets", "fields", "shards") and name in seen:
                raise InvalidInput(f"parameter {name!r} is given more than once")
            seen.add(name)
            _system(query, name, value, vocabulary, max_limit, free_text)
            continue
        values = _split(value)
        if not values:
            raise InvalidInput(f"constraint {raw_name!r} has no value")
        check_constraint(name, vocabulary)
        query.constraints.add(name, record_values(name, values), negated=negated)
    if free_text:
        query.query_text = " ".join(free_text)
        query.q = _free_text(query.query_text, query.constraints, vocabulary)
    if query.type != "Dataset" and not query.constraints.wanted.get("dataset_id"):
        raise InvalidInput(
            f"type={query.type} lists the {query.type.lower()}s of named datasets: "
            "give dataset_id=<id> (one or more)"
        )
    return query


def _system(
    query: EsgQuery,
    name: str,
    value: str,
    vocabulary: FacetVocabulary,
    max_limit: int,
    free_text: list[str],
) -> None:
    if name == "type":
        for kind in SEARCH_TYPES:
            if value == kind:
                query.type = kind
                break
        else:
            raise InvalidInput(
                f"parameter 'type' is Dataset, File or Aggregation on this node, not {value!r}"
            )
    elif name == "format":
        if value != SOLR_JSON:
            raise InvalidInput(f"parameter 'format' is {SOLR_JSON} on this node, not {value!r}")
    elif name == "limit":
        query.limit = _int(name, value, 0, max_limit)
    elif name == "offset":
        query.offset = _int(name, value, 0, 2**31 - 1)
    elif name == "facets":
        for facet in _split(value):
            if facet == "*":
                query.facets.append("*")
            else:
                vocabulary.properties(facet, where="facets")
                query.facets.append(facet)
    elif name == "fields":
        query.fields = [*(query.fields or []), *_split(value)]
    elif name in ("latest", "retracted"):
        query.flags[name] = _bool(name, value)
    elif name == "replica":
        query.replica = _bool(name, value)
    elif name == "distrib":
        _bool(name, value)
    elif name == "query":
        free_text.append(value)
    elif name in ("start", "end"):
        start, end = query.interval or (None, None)
        instant = _instant(name, value)
        query.interval = (instant, end) if name == "start" else (start, instant)
        if query.interval[0] and query.interval[1] and query.interval[0] > query.interval[1]:
            raise InvalidInput("parameter 'start' is after 'end'")
    elif name in ("from", "to"):
        start, end = query.indexed or (None, None)
        instant = _instant(name, value)
        query.indexed = (instant, end) if name == "from" else (start, instant)
        if query.indexed[0] and query.indexed[1] and query.indexed[0] > query.indexed[1]:
            raise InvalidInput("parameter 'from' is after 'to'")
    elif name == "bbox":
        query.bbox = _bbox(value)


# --- documents ----------------------------------------------------------------------------


def project(doc: dict[str, Any], fields: Sequence[str] | None) -> dict[str, Any]:
    """Only the asked-for fields, as Solr's ``fl``; ``*`` keeps all."""
    if not fields or "*" in fields:
        return doc
    return {k: doc[k] for k in fields if k in doc}


def facet_counts(fields: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    """Solr's facet_counts: each field's values and counts, flat, values sorted."""
    return {
        "facet_queries": {},
        "facet_fields": {
            name: [x for key in sorted(counts) for x in (key, counts[key])]
            for name, counts in fields.items()
        },
        "facet_ranges": {},
        "facet_intervals": {},
        "facet_heatmaps": {},
    }


# --- the search ---------------------------------------------------------------------------


def count_facets(
    search: CatalogSearch,
    request: SearchRequest | None,
    names: Sequence[str],
    vocabulary: FacetVocabulary,
) -> dict[str, dict[str, int]]:
    """``{bare name: {value: count}}`` over what ``request`` matches, summed over projects."""
    # One property may serve two requested names (an alias and its facet).
    wanted: dict[str, list[str]] = {}
    if request is None:
        return {n: {} for n in names}
    for name in names:
        for prop in vocabulary.properties(name, where="facets"):
            wanted.setdefault(prop, []).append(name)
    counts: dict[str, dict[str, int]] = {n: {} for n in names}
    if not wanted:
        return counts
    for aggregation in search.aggregate(request, list(wanted)):
        for name in wanted.get(aggregation.name, []):
            merged = counts[name]
            for bucket in aggregation.buckets:
                merged[bucket.key] = merged.get(bucket.key, 0) + bucket.count
    return counts


class EsgSearch:
    """Answers legacy searches from a node's :class:`CatalogSearch`."""

    def __init__(self, search: CatalogSearch, *, node_name: str, max_limit: int = MAX_LIMIT):
        self.search = search
        self.node_name = node_name
        self.max_limit = min(max_limit, MAX_LIMIT)

    def vocabulary(self) -> FacetVocabulary:
        """The facets as items have them now."""
        return FacetVocabulary(self.search.aggregations())

    def run(self, params: Sequence[tuple[str, str]], *, base_url: str) -> dict[str, Any]:
        """The Solr JSON answer to a query string's ``(name, value)`` pairs."""
        started = time.perf_counter()
        vocabulary = self.vocabulary()
        query = parse_params(params, vocabulary, max_limit=self.max_limit)
        ctx = DocContext(self.node_name, base_url.rstrip("/"))
        if query.type != "Dataset":
            found, docs, counts = self._parts(query, vocabulary, ctx)
        else:
            found, docs, counts = self._datasets(query, vocabulary, ctx)
        response: dict[str, Any] = {
            "numFound": found,
            "start": query.offset,
            "docs": [project(d, query.fields) for d in docs],
        }
        if docs:
            response["maxScore"] = 1.0
        body: dict[str, Any] = {
            "responseHeader": {
                "status": 0,
                "QTime": round((time.perf_counter() - started) * 1000),
                "params": self._echo(query),
            },
            "response": response,
        }
        if query.facets:
            body["facet_counts"] = facet_counts(counts)
        else:
            body["facet_counts"] = facet_counts({})
        return body

    def _facet_names(self, query: EsgQuery, vocabulary: FacetVocabulary) -> list[str]:
        if "*" in query.facets:
            return [*vocabulary.names, *ALIASES]
        return list(dict.fromkeys(query.facets))

    def _datasets(
        self, query: EsgQuery, vocabulary: FacetVocabulary, ctx: DocContext
    ) -> tuple[int, list[dict[str, Any]], dict[str, dict[str, int]]]:
        names = self._facet_names(query, vocabulary)
        # Solr's rows=0 still counts: ask for one and show none.
        request = query.request(vocabulary, limit=max(query.limit, 1), offset=query.offset)
        if request is None:
            return 0, [], {n: {} for n in names}
        page = self.search.search(request)
        items = page.items if query.limit else []
        docs = [
            dataset_doc(item, ctx, when) for item, when in zip(items, page.indexed, strict=False)
        ]
        counts = count_facets(self.search, request, names, vocabulary) if names else {}
        return page.matched, docs, counts

    def _parts(
        self, query: EsgQuery, vocabulary: FacetVocabulary, ctx: DocContext
    ) -> tuple[int, list[dict[str, Any]], dict[str, dict[str, int]]]:
        """The File or Aggregation records of the datasets named by dataset_id."""
        datasets = query.constraints.wanted.get("dataset_id", [])
        if len(datasets) > MAX_FILE_DATASETS:
            raise InvalidInput(
                f"a {query.type} search names at most {MAX_FILE_DATASETS} datasets, "
                f"not {len(datasets)}"
            )
        records = file_docs if query.type == "File" else aggregation_docs
        names = self._facet_names(query, vocabulary)
        request = query.request(vocabulary, limit=max(len(datasets), 1), offset=0)
        if request is None:
            return 0, [], {n: {} for n in names}
        page = self.search.search(request)
        files = [
            doc
            for item, when in zip(page.items, page.indexed, strict=False)
            for doc in records(item, ctx, when)
        ]
        counts: dict[str, dict[str, int]] = {n: {} for n in names}
        for doc in files:
            for name in names:
                for value in as_list(doc.get(ALIASES.get(name, name), [])):
                    key = str(value)
                    counts[name][key] = counts[name].get(key, 0) + 1
        window = files[query.offset : query.offset + query.limit]
        return len(files), window, counts

    def _echo(self, query: EsgQuery) -> dict[str, Any]:
        fq = [f"type:{query.type}", *query.constraints.solr()]
        fq += [f"{k}:{str(v).lower()}" for k, v in query.flags.items()]
        if query.replica is not None:
            fq.append(f"replica:{str(query.replica).lower()}")
        params: dict[str, Any] = {
            "q": query.query_text or "*:*",
            "fq": fq,
            "start": str(query.offset),
            "rows": str(query.limit),
            "fl": ",".join(query.fields) if query.fields else "*,score",
            "wt": "json",
            "distrib": "false",
            "facet": "true" if query.facets else "false",
        }
        if query.facets:
            params.update(
                {
                    "facet.field": query.facets,
                    "facet.limit": "-1",
                    "facet.mincount": "1",
                    "facet.sort": "lex",
                }
            )
        return params
