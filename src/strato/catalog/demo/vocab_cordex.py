"""A realistic subset of the CORDEX-CMIP6 controlled vocabulary: domains, regional models
and the driving experiments they downscale (the CMIP6 part is :mod:`strato.catalog.demo.vocab`).
"""

from __future__ import annotations

from dataclasses import dataclass

from strato.catalog.demo.vocab import (
    CLT,
    HUSS,
    PR,
    PSL,
    RSDS,
    TAS,
    UAS,
    VAS,
    Variable,
    var,
)

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


_DOMAIN_LIST = (
    Domain("EUR-12", "Europe", (-44.0, 21.0, 65.0, 73.0), 174688),
    Domain("MED-12", "Mediterranean", (-20.0, 25.0, 45.0, 55.0), 96000),
    Domain("AFR-25", "Africa", (-25.0, -46.0, 60.0, 42.0), 152000),
    Domain("NAM-12", "North America", (-172.0, 12.0, -23.0, 76.0), 300000),
    Domain("SAM-25", "South America", (-106.0, -58.0, -16.0, 18.0), 72000),
    Domain("EAS-25", "East Asia", (62.0, -15.0, 180.0, 60.0), 140000),
    Domain("WAS-25", "South Asia", (19.0, -16.0, 116.0, 45.0), 96000),
    Domain("AUS-25", "Australasia", (89.0, -53.0, 180.0, 13.0), 110000),
)
DOMAINS: dict[str, Domain] = {d.domain_id: d for d in _DOMAIN_LIST}

_RCM_LIST = (
    RegionalModel("REMO2020", ("GERICS",), "ARCM", ("EUR-12", "AFR-25", "WAS-25")),
    RegionalModel("RACMO23E", ("KNMI",), "ARCM", ("EUR-12",)),
    RegionalModel(
        "HCLIM43-ALADIN",
        ("HCLIMcom-DMI", "HCLIMcom-METNo", "HCLIMcom-SMHI"),
        "ARCM",
        ("EUR-12",),
    ),
    RegionalModel(
        "ICON-CLM-202407-1-1",
        ("CLMcom-DWD", "CLMcom-KIT", "CLMcom-CMCC", "CLMcom-GERICS"),
        "ARCM",
        ("EUR-12", "AFR-25"),
    ),
    RegionalModel("CNRM-ALADIN64E1", ("CNRM-MF",), "ARCM", ("EUR-12", "MED-12")),
    RegionalModel("HadREM3-GA7-05", ("MOHC",), "ARCM", ("EUR-12",)),
    RegionalModel("CRCM5-SN", ("OURANOS",), "ARCM", ("NAM-12",)),
    RegionalModel("CanRCM5-SN", ("CCCma",), "ARCM", ("NAM-12",)),
    RegionalModel("BARPA-R1-NN", ("BOM",), "ARCM", ("AUS-25",)),
    RegionalModel("CCAM-v2112", ("UQ-DEC",), "AGCM", ("AUS-25", "SAM-25", "EAS-25")),
    RegionalModel("ALARO1-SFX", ("RMIB-UGent",), "ARCM", ("EUR-12",), ("v1-r1", "v1-r2")),
)
REGIONAL_MODELS: dict[str, RegionalModel] = {r.source_id: r for r in _RCM_LIST}

_DRIVING_EXPERIMENT_LIST = (
    DrivingExperiment("evaluation", 1979, 2020, "reanalysis simulation of the recent past"),
    DrivingExperiment("historical", 1950, 2014, "all-forcing simulation of the recent past"),
    DrivingExperiment("ssp126", 2015, 2100, "update of RCP2.6 based on SSP1"),
    DrivingExperiment("ssp245", 2015, 2100, "update of RCP4.5 based on SSP2"),
    DrivingExperiment("ssp370", 2015, 2100, "gap-filling scenario reaching 7.0 based on SSP3"),
    DrivingExperiment("ssp585", 2015, 2100, "update of RCP8.5 based on SSP5"),
)
DRIVING_EXPERIMENTS: dict[str, DrivingExperiment] = {
    e.experiment_id: e for e in _DRIVING_EXPERIMENT_LIST
}
# The reanalysis that drives "evaluation" runs; it has no variant label.
REANALYSIS = "ERA5"
# Global models (from SOURCES) that drive the regional ones.
DRIVING_SOURCES: tuple[str, ...] = (
    "ACCESS-ESM1-5",
    "CanESM5",
    "CESM2",
    "CNRM-ESM2-1",
    "EC-Earth3",
    "GFDL-ESM4",
    "MIROC6",
    "MPI-ESM1-2-LR",
    "NorESM2-LM",
    "UKESM1-0-LL",
)

# variable -> the frequencies at which the CORDEX-CMIP6 data request asks for it.
CORDEX_VARIABLES: dict[str, tuple[Variable, tuple[str, ...]]] = {
    "tas": (var(*TAS), ("1hr", "3hr", "day", "mon")),
    "pr": (var(*PR), ("1hr", "3hr", "day", "mon")),
    "tasmax": (
        var("tasmax", "air_temperature", "Daily Maximum Near-Surface Air Temperature", "K"),
        ("day", "mon"),
    ),
    "tasmin": (
        var("tasmin", "air_temperature", "Daily Minimum Near-Surface Air Temperature", "K"),
        ("day", "mon"),
    ),
    "psl": (var(*PSL), ("3hr", "6hr", "day", "mon")),
    "uas": (var(*UAS), ("3hr", "day", "mon")),
    "vas": (var(*VAS), ("3hr", "day", "mon")),
    "sfcWind": (
        var("sfcWind", "wind_speed", "Near-Surface Wind Speed", "m s-1"),
        ("1hr", "day", "mon"),
    ),
    "huss": (var(*HUSS), ("3hr", "day", "mon")),
    "rsds": (var(*RSDS), ("3hr", "day", "mon")),
    "clt": (var(*CLT), ("3hr", "day", "mon")),
    "ua850": (var("ua850", "eastward_wind", "Eastward Wind at 850 hPa", "m s-1"), ("6hr", "day")),
    "zg500": (
        var("zg500", "geopotential_height", "Geopotential Height at 500 hPa", "m"),
        ("6hr", "day"),
    ),
    "orog": (var("orog", "surface_altitude", "Surface Altitude", "m"), ("fx",)),
    "sftlf": (
        var("sftlf", "land_area_fraction", "Percentage of the Grid Cell Occupied by Land", "%"),
        ("fx",),
    ),
    "areacella": (
        var("areacella", "cell_area", "Grid-Cell Area for Atmospheric Grid Variables", "m2"),
        ("fx",),
    ),
}
CORDEX_FREQUENCIES = ("1hr", "3hr", "6hr", "day", "mon", "fx")
