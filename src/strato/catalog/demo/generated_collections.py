"""The STAC Collections of the generated projects' items: extents and summaries of the
facets the vocabularies allow (what a publisher creates before it sends items).
"""

from __future__ import annotations

from typing import Any

from strato.catalog.demo import vocab
from strato.catalog.demo import vocab_cordex as cordex
from strato.catalog.demo.generator import GLOBAL_BBOX, STAC_VERSION, Project, check


def collection_for(project: Project) -> dict[str, Any]:
    """The STAC Collection of ``project``'s items, with ``summaries`` of its facets."""
    check(project, 0)
    if project == "CMIP6":
        return _cmip6_collection()
    return _cordex_collection()


def _cmip6_collection() -> dict[str, Any]:
    sources = vocab.SOURCES.values()
    experiments = vocab.EXPERIMENTS.values()
    tables = vocab.TABLES.values()
    start = min(e.start_year for e in experiments)
    end = max(e.end_year for e in experiments)
    frequencies = {t.frequency_of(v) for t in tables for v in t.variables}
    realms = {r for t in tables for v in t.variables for r in t.realm_of(v).split()}
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "id": "CMIP6",
        "title": "CMIP6",
        "description": "Coupled Model Intercomparison Project Phase 6: global climate model "
        "output, one item per dataset, one asset per file.",
        "keywords": ["CMIP6", "climate", "model output", "WCRP"],
        "license": "CC-BY-4.0",
        "providers": [
            {"name": "WCRP", "roles": ["licensor"], "url": "https://wcrp-cmip.org/"},
            {"name": "ESGF", "roles": ["host"], "url": "https://esgf.llnl.gov/"},
        ],
        "extent": {
            "spatial": {"bbox": [list(GLOBAL_BBOX)]},
            "temporal": {
                "interval": [[f"{start:04d}-01-01T00:00:00Z", f"{end:04d}-12-31T23:59:59Z"]]
            },
        },
        "summaries": {
            "cmip6:activity_id": sorted(vocab.ACTIVITIES),
            "cmip6:experiment_id": sorted(e.experiment_id for e in experiments),
            "cmip6:institution_id": sorted({i for s in sources for i in s.institutions}),
            "cmip6:source_id": sorted(s.source_id for s in sources),
            "cmip6:source_type": sorted({t for s in sources for t in s.source_type}),
            "cmip6:table_id": sorted(t.table_id for t in tables),
            "cmip6:variable_id": sorted({v.variable_id for t in tables for v in t.variables}),
            "cmip6:frequency": sorted(frequencies),
            "cmip6:realm": sorted(realms),
            "cmip6:grid_label": sorted({g for s in sources for g in (s.atmos_grid, s.ocean_grid)}),
            "cmip6:nominal_resolution": sorted({s.nominal_resolution for s in sources}),
        },
        "links": [],
    }


def _cordex_collection() -> dict[str, Any]:
    domains = cordex.DOMAINS.values()
    models = cordex.REGIONAL_MODELS.values()
    experiments = cordex.DRIVING_EXPERIMENTS.values()
    boxes = [d.bbox for d in domains]
    union = [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]
    start = min(e.start_year for e in experiments)
    end = max(e.end_year for e in experiments)
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "id": "CORDEX",
        "title": "CORDEX-CMIP6",
        "description": "Coordinated Regional Climate Downscaling Experiment driven by CMIP6: "
        "regional climate model output, one item per dataset, one asset per file.",
        "keywords": ["CORDEX", "CMIP6", "regional climate", "downscaling", "WCRP"],
        "license": "CC-BY-4.0",
        "providers": [{"name": "WCRP CORDEX", "roles": ["licensor"], "url": "https://cordex.org/"}],
        "extent": {
            "spatial": {"bbox": [union, *(list(b) for b in boxes)]},
            "temporal": {
                "interval": [[f"{start:04d}-01-01T00:00:00Z", f"{end:04d}-12-31T23:59:59Z"]]
            },
        },
        "summaries": {
            "cordex:activity_id": ["DD"],
            "cordex:domain_id": sorted(d.domain_id for d in domains),
            "cordex:institution_id": sorted({i for m in models for i in m.institutions}),
            "cordex:source_id": sorted(m.source_id for m in models),
            "cordex:driving_source_id": sorted([*cordex.DRIVING_SOURCES, cordex.REANALYSIS]),
            "cordex:driving_experiment_id": sorted(e.experiment_id for e in experiments),
            "cordex:frequency": sorted(cordex.CORDEX_FREQUENCIES),
            "cordex:variable_id": sorted(cordex.CORDEX_VARIABLES),
        },
        "links": [],
    }
