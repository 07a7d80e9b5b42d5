"""A realistic subset of the CMIP6 controlled vocabularies, read from
``vocabularies/cmip6.json`` (the CORDEX-CMIP6 part is :mod:`strato.catalog.demo.vocab_cordex`).

Enough of WCRP's CVs and data request for the record generator to draw facets that are
consistent the way real archives are: an experiment belongs to its activity, a model to
its institution(s), a variable to its table and frequency, a regional model to its
institutions and domains. Grid sizes, calendars and forcing indices follow the models'
published configurations closely enough for realistic file names and sizes; which model
ran which specialised experiment is approximated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from pydantic import TypeAdapter

# --- CMIP6 --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Source:
    """A CMIP6 model (``source_id``) and what its output looks like."""

    source_id: str
    institutions: tuple[str, ...]
    source_type: tuple[str, ...]
    nominal_resolution: str
    atmos_grid: str
    ocean_grid: str
    atmos_cells: int
    ocean_cells: int
    physics: int = 1
    forcing: int = 1
    calendar: str = "proleptic_gregorian"


@dataclass(frozen=True, slots=True)
class Experiment:
    experiment_id: str
    activity_id: str
    start_year: int
    end_year: int
    description: str
    # "atmos": prescribed sea surface, so no ocean or sea-ice output exists.
    kind: Literal["coupled", "atmos"] = "coupled"
    # A source_type every participating model has (emission-driven runs need "BGC").
    needs: str | None = None
    # Only these models ran it; empty means any model may have.
    sources: tuple[str, ...] = ()
    # Start years of the hindcasts of a decadal experiment ("s1960", ...), each ten years.
    sub_experiments: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Variable:
    variable_id: str
    standard_name: str
    long_name: str
    units: str
    levels: int = 1
    # Overrides the table's frequency (the 3hr table mixes "3hr" means and "3hrPt" samples).
    frequency: str | None = None
    realm: str | None = None


@dataclass(frozen=True, slots=True)
class Table:
    table_id: str
    frequency: str
    realm: str
    grid: Literal["atmos", "ocean"]
    variables: tuple[Variable, ...]

    def frequency_of(self, variable: Variable) -> str:
        return variable.frequency or self.frequency

    def realm_of(self, variable: Variable) -> str:
        return variable.realm or self.realm


def load(name: str) -> dict[str, Any]:
    """A vocabulary file of this package, as parsed JSON."""
    text = resources.files("strato.catalog.demo").joinpath("vocabularies", name).read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


# The files are read once, when the generator is first imported (never by a production
# module), and checked against the dataclasses so a typo fails here, not mid-generation.
_CMIP6 = load("cmip6.json")
# Insertion order is the file's order, which the generator draws from: reordering the
# file changes the records a seed gives.
SOURCES: dict[str, Source] = {
    s.source_id: s for s in TypeAdapter(list[Source]).validate_python(_CMIP6["sources"])
}
EXPERIMENTS: dict[str, Experiment] = {
    e.experiment_id: e for e in TypeAdapter(list[Experiment]).validate_python(_CMIP6["experiments"])
}
ACTIVITIES: tuple[str, ...] = tuple(sorted({e.activity_id for e in EXPERIMENTS.values()}))
TABLES: dict[str, Table] = {
    t.table_id: t for t in TypeAdapter(list[Table]).validate_python(_CMIP6["tables"])
}
GRID_LABELS: tuple[str, ...] = tuple(_CMIP6["grid_labels"])
DATA_SPECS_VERSIONS: tuple[str, ...] = tuple(_CMIP6["data_specs_versions"])

# Tables whose variables exist for a run with prescribed sea surface (``kind="atmos"``).
ATMOS_ONLY_TABLES = frozenset({"Amon", "day", "3hr", "fx", "Lmon"})
# High-frequency output is not archived for very long runs.
LONG_RUN_YEARS = 200
HIGH_FREQUENCY_TABLES = frozenset({"day", "3hr", "Oday"})

# Time steps per year for each frequency, by calendar length.
STEPS_PER_YEAR: dict[str, int] = {
    "mon": 12,
    "day": 365,
    "6hr": 1460,
    "3hr": 2920,
    "3hrPt": 2920,
    "1hr": 8760,
    "fx": 0,
}
DAYS_IN_YEAR = {"360_day": 360}
