"""ESGF search vocabulary: the projects' facet names, the names ESGF's Solr schema used
for them, and constraints (``name=value`` parameters) as CQL2 JSON for the catalog search.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from strato.catalog.search.esg_records import (
    PLAIN_FACETS,
    bare_name,
)
from strato.errors import InvalidInput

# The facets of the projects' STAC extensions (ESGF's CMIP6 and CORDEX-CMIP6 schemas),
# by their bare names.
CMIP6_FACETS = (
    "activity_id",
    "data_specs_version",
    "experiment",
    "experiment_id",
    "frequency",
    "further_info_url",
    "grid_label",
    "institution_id",
    "member_id",
    "mip_era",
    "nominal_resolution",
    "product",
    "realm",
    "source_id",
    "source_type",
    "sub_experiment_id",
    "table_id",
    "variable_cf_standard_name",
    "variable_id",
    "variable_long_name",
    "variable_units",
    "variant_label",
)
CORDEX_FACETS = (
    "activity_id",
    "domain",
    "domain_id",
    "driving_experiment",
    "driving_experiment_id",
    "driving_source_id",
    "driving_variant_label",
    "frequency",
    "institution_id",
    "mip_era",
    "product",
    "project_id",
    "realm",
    "source_id",
    "source_type",
    "variable_cf_standard_name",
    "variable_id",
    "variable_long_name",
    "variable_units",
    "version_realization",
)
PROJECT_PREFIXES = {"cmip6": CMIP6_FACETS, "cordex": CORDEX_FACETS}
# Names ESGF's Solr schema used where the STAC extensions renamed the field.
ALIASES = {
    # The DRS's activity (intake-esgf's key facet) is the dataset's activity_id.
    "activity_drs": "activity_id",
    "variable": "variable_id",
    "cf_standard_name": "variable_cf_standard_name",
    "experiment_title": "experiment",
}

# Constraints on the records themselves rather than on facets.
_IDS = frozenset({"id", "instance_id", "dataset_id"})
_MASTER_IDS = frozenset({"master_id", "drs_id"})

QUERY_STRING = "the query string"


# --- facet names --------------------------------------------------------------------------


class FacetVocabulary:
    """Bare ESGF facet names and the item properties each stands for on this node.

    A name is known if a project's schema has it or an item has it; it stands for the
    properties items have (the search refuses to filter on others), which may be none yet.
    """

    def __init__(self, present: Iterable[str] = ()) -> None:
        known = set(PLAIN_FACETS)
        for names in PROJECT_PREFIXES.values():
            known.update(names)
        props: dict[str, list[str]] = {name: [] for name in known}
        for prop in present:
            # Also facets beyond the known schemas (another project, a newer schema).
            if prop in PLAIN_FACETS or ":" in prop:
                props.setdefault(bare_name(prop), []).append(prop)
        self._props = {name: tuple(sorted(p)) for name, p in props.items()}

    @property
    def names(self) -> list[str]:
        """Every known bare name."""
        return sorted(self._props)

    @property
    def present(self) -> list[str]:
        """The bare names some item has."""
        return sorted(name for name, props in self._props.items() if props)

    def properties(self, name: str, *, where: str = QUERY_STRING) -> tuple[str, ...]:
        """The properties bare ``name`` stands for; InvalidInput if it is no facet."""
        found = self._props.get(ALIASES.get(name, name))
        if found is None:
            # The words of ESGF's own answer, which esgf-pyclient picks the name out of.
            prefix = f"Invalid HTTP query parameter={name}: " if where == QUERY_STRING else ""
            raise InvalidInput(
                f"{prefix}unknown facet {name!r} in {where}; facets are e.g. project, "
                "source_id, experiment_id, variable_id, domain_id"
            )
        return found


# --- constraints -> CQL2 JSON -------------------------------------------------------------


def _in(prop: str, values: Sequence[Any]) -> dict[str, Any]:
    if len(values) == 1:
        return {"op": "=", "args": [{"property": prop}, values[0]]}
    return {"op": "in", "args": [{"property": prop}, list(values)]}


def _any(clauses: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return clauses[0] if len(clauses) == 1 else {"op": "or", "args": list(clauses)}


def all_of(clauses: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"op": "and", "args": list(clauses)}


@dataclass
class Constraints:
    """Facet values wanted and refused, by bare name, in the order they came."""

    wanted: dict[str, list[str]] = field(default_factory=dict)
    refused: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, values: Iterable[str], *, negated: bool) -> None:
        target = (self.refused if negated else self.wanted).setdefault(name, [])
        target.extend(v for v in values if v not in target)

    def to_cql2(self, vocabulary: FacetVocabulary) -> list[dict[str, Any]] | None:
        """The constraints as CQL2 JSON clauses to AND; None if nothing can match."""
        clauses = []
        for name, values in self.wanted.items():
            props = _constraint_properties(name, vocabulary)
            if not props:
                # No item has this facet: wanting a value of it matches nothing.
                return None
            clauses.append(_any([_in(p, values) for p in props]))
        for name, values in self.refused.items():
            props = _constraint_properties(name, vocabulary)
            if props:
                clauses.append({"op": "not", "args": [_any([_in(p, values) for p in props])]})
        return clauses

    def solr(self) -> list[str]:
        """The constraints as Solr filter queries, echoed in the response header."""
        out = []
        for negated, constraints in ((False, self.wanted), (True, self.refused)):
            for name, values in constraints.items():
                quoted = " || ".join(f'"{v}"' for v in values)
                out.append(f"{'-' if negated else ''}{name}:({quoted})")
        return out


def _constraint_properties(name: str, vocabulary: FacetVocabulary) -> tuple[str, ...]:
    if name in _IDS:
        return ("id",)
    if name in _MASTER_IDS:
        return ("base_id",)
    if name == "version":
        return ("version",)
    return vocabulary.properties(name)


def check_constraint(name: str, vocabulary: FacetVocabulary, *, where: str = QUERY_STRING) -> None:
    """InvalidInput unless ``name`` is something a search can be constrained by."""
    if name == "tracking_id":
        # Files are assets of items here, which are not indexed by them.
        raise InvalidInput(
            "files are not found by tracking_id on this node: list the files of a dataset "
            "with type=File&dataset_id=<id>"
        )
    if name not in _IDS and name not in _MASTER_IDS and name != "version":
        vocabulary.properties(name, where=where)


def record_values(name: str, values: Iterable[str]) -> list[str]:
    """Constraint values as the item columns hold them."""
    if name in _IDS:
        # ESGF's ids are "<instance_id>|<data node>"; items are known by the instance id.
        return [v.split("|", 1)[0] for v in values]
    if name == "version":
        return [v[1:] if v[:1] in ("v", "V") and v[1:].isdigit() else v for v in values]
    return list(values)


