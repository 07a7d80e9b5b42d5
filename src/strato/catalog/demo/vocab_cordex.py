"""A realistic subset of the CORDEX-CMIP6 controlled vocabulary, read from
``vocabularies/cordex.json``: domains, regional models and the driving experiments they
downscale (the CMIP6 part is :mod:`strato.catalog.demo.vocab`).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import TypeAdapter

from strato.catalog.demo.vocab import Variable, load

# --- CORDEX-CMIP6 -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Domain:
    domain_id: str
    name: str
    # Approximate geographic extent of the rotated grid: west, south, east, north.
    bbox: tuple[float, float, float, float]
    cells: int


@dataclass(frozen=True, slots=True)
class RegionalModel:
    source_id: str
    institutions: tuple[str, ...]
    source_type: str
    domains: tuple[str, ...]
    versions: tuple[str, ...] = ("v1-r1",)


@dataclass(frozen=True, slots=True)
class DrivingExperiment:
    experiment_id: str
    start_year: int
    end_year: int
    description: str


@dataclass(frozen=True, slots=True)
class CordexVariable(Variable):
    """A variable and the frequencies at which the CORDEX-CMIP6 data request asks for it."""

    frequencies: tuple[str, ...] = ()


_CORDEX = load("cordex.json")
# As in vocab: the file's order is the order the generator draws in.
DOMAINS: dict[str, Domain] = {
    d.domain_id: d for d in TypeAdapter(list[Domain]).validate_python(_CORDEX["domains"])
}
REGIONAL_MODELS: dict[str, RegionalModel] = {
    r.source_id: r
    for r in TypeAdapter(list[RegionalModel]).validate_python(_CORDEX["regional_models"])
}
DRIVING_EXPERIMENTS: dict[str, DrivingExperiment] = {
    e.experiment_id: e
    for e in TypeAdapter(list[DrivingExperiment]).validate_python(_CORDEX["driving_experiments"])
}
# The reanalysis that drives "evaluation" runs; it has no variant label.
REANALYSIS: str = _CORDEX["reanalysis"]
# Global models (from vocab.SOURCES) that drive the regional ones.
DRIVING_SOURCES: tuple[str, ...] = tuple(_CORDEX["driving_sources"])


def _variables() -> dict[str, tuple[Variable, tuple[str, ...]]]:
    found = TypeAdapter(list[CordexVariable]).validate_python(_CORDEX["variables"])
    return {
        v.variable_id: (
            Variable(
                v.variable_id,
                v.standard_name,
                v.long_name,
                v.units,
                v.levels,
                v.frequency,
                v.realm,
            ),
            v.frequencies,
        )
        for v in found
    }


# variable -> the frequencies at which the CORDEX-CMIP6 data request asks for it.
CORDEX_VARIABLES: dict[str, tuple[Variable, tuple[str, ...]]] = _variables()
CORDEX_FREQUENCIES: tuple[str, ...] = tuple(_CORDEX["frequencies"])
