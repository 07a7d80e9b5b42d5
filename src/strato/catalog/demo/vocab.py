"""A realistic subset of the CMIP6 and CORDEX-CMIP6 controlled vocabularies.

Enough of WCRP's CVs and data request for the record generator to draw facets that are
consistent the way real archives are: an experiment belongs to its activity, a model to
its institution(s), a variable to its table and frequency, a regional model to its
institutions and domains. Grid sizes, calendars and forcing indices follow the models'
published configurations closely enough for realistic file names and sizes; which model
ran which specialised experiment is approximated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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


_SOURCE_LIST = (
    Source("ACCESS-CM2", ("CSIRO-ARCCSS",), ("AOGCM",), "250 km", "gn", "gn", 27648, 108000),
    Source("ACCESS-ESM1-5", ("CSIRO",), ("AOGCM", "BGC"), "250 km", "gn", "gn", 27840, 108000),
    Source(
        "BCC-CSM2-MR", ("BCC",), ("AOGCM",), "100 km", "gn", "gn", 51200, 83520, calendar="365_day"
    ),
    Source(
        "CanESM5",
        ("CCCma",),
        ("AOGCM",),
        "500 km",
        "gn",
        "gn",
        8192,
        104690,
        calendar="365_day",
    ),
    Source(
        "CESM2",
        ("NCAR",),
        ("AOGCM", "BGC", "AER"),
        "100 km",
        "gn",
        "gn",
        55296,
        122880,
        calendar="noleap",
    ),
    Source(
        "CNRM-CM6-1", ("CNRM-CERFACS",), ("AOGCM",), "250 km", "gr", "gn", 32768, 106428, forcing=2
    ),
    Source(
        "CNRM-ESM2-1",
        ("CNRM-CERFACS",),
        ("AOGCM", "BGC", "AER", "CHEM"),
        "250 km",
        "gr",
        "gn",
        32768,
        106428,
        forcing=2,
    ),
    Source("EC-Earth3", ("EC-Earth-Consortium",), ("AOGCM",), "100 km", "gr", "gn", 131072, 105704),
    Source(
        "GFDL-ESM4",
        ("NOAA-GFDL",),
        ("AOGCM", "AER", "CHEM", "BGC"),
        "100 km",
        "gr1",
        "gn",
        51840,
        414720,
        calendar="noleap",
    ),
    Source(
        "HadGEM3-GC31-LL",
        ("MOHC", "NERC"),
        ("AOGCM", "AER"),
        "250 km",
        "gn",
        "gn",
        27648,
        118800,
        forcing=3,
        calendar="360_day",
    ),
    Source(
        "INM-CM5-0",
        ("INM",),
        ("AOGCM", "AER"),
        "100 km",
        "gr1",
        "gr1",
        21600,
        64800,
        calendar="365_day",
    ),
    Source("IPSL-CM6A-LR", ("IPSL",), ("AOGCM", "BGC"), "250 km", "gr", "gn", 20592, 120184),
    Source("MIROC6", ("MIROC",), ("AOGCM", "AER"), "250 km", "gn", "gn", 32768, 92160),
    Source("MPI-ESM1-2-LR", ("MPI-M",), ("AOGCM",), "250 km", "gn", "gn", 18432, 56320),
    Source("MRI-ESM2-0", ("MRI",), ("AOGCM", "AER", "CHEM"), "100 km", "gn", "gn", 51200, 131040),
    Source(
        "NorESM2-LM",
        ("NCC",),
        ("AOGCM", "AER"),
        "250 km",
        "gn",
        "gn",
        13824,
        138240,
        calendar="noleap",
    ),
    Source(
        "UKESM1-0-LL",
        ("MOHC", "NERC", "NIMS-KMA", "NIWA"),
        ("AOGCM", "AER", "BGC", "CHEM"),
        "250 km",
        "gn",
        "gn",
        27648,
        118800,
        forcing=2,
        calendar="360_day",
    ),
)
SOURCES: dict[str, Source] = {s.source_id: s for s in _SOURCE_LIST}

_HINDCAST_STARTS = tuple(range(1960, 2020))

_EXPERIMENT_LIST = (
    Experiment("historical", "CMIP", 1850, 2014, "all-forcing simulation of the recent past"),
    Experiment("piControl", "CMIP", 1850, 2349, "pre-industrial control"),
    Experiment("amip", "CMIP", 1979, 2014, "AMIP", kind="atmos"),
    Experiment("abrupt-4xCO2", "CMIP", 1850, 1999, "abrupt quadrupling of CO2"),
    Experiment("1pctCO2", "CMIP", 1850, 1999, "1 percent per year increase in CO2"),
    Experiment(
        "esm-hist",
        "CMIP",
        1850,
        2014,
        "all-forcing simulation of the recent past with atmospheric CO2 concentration calculated",
        needs="BGC",
    ),
    Experiment(
        "esm-piControl",
        "CMIP",
        1850,
        2349,
        "pre-industrial control simulation with CO2 concentration calculated",
        needs="BGC",
    ),
    Experiment(
        "ssp119", "ScenarioMIP", 2015, 2100, "low-end scenario reaching 1.9 W m-2, based on SSP1"
    ),
    Experiment("ssp126", "ScenarioMIP", 2015, 2100, "update of RCP2.6 based on SSP1"),
    Experiment("ssp245", "ScenarioMIP", 2015, 2100, "update of RCP4.5 based on SSP2"),
    Experiment(
        "ssp370", "ScenarioMIP", 2015, 2100, "gap-filling scenario reaching 7.0 based on SSP3"
    ),
    Experiment(
        "ssp434", "ScenarioMIP", 2015, 2100, "gap-filling scenario reaching 3.4 based on SSP4"
    ),
    Experiment("ssp460", "ScenarioMIP", 2015, 2100, "update of RCP6.0 based on SSP4"),
    Experiment(
        "ssp534-over",
        "ScenarioMIP",
        2040,
        2100,
        "overshoot of 3.4 W/m**2 branching from ssp585 in 2040",
    ),
    Experiment("ssp585", "ScenarioMIP", 2015, 2100, "update of RCP8.5 based on SSP5"),
    Experiment("hist-GHG", "DAMIP", 1850, 2020, "historical well-mixed GHG-only run"),
    Experiment("hist-aer", "DAMIP", 1850, 2020, "historical anthropogenic aerosols-only run"),
    Experiment("hist-nat", "DAMIP", 1850, 2020, "historical natural-only run"),
    Experiment("amip-4K", "CFMIP", 1979, 2014, "AMIP with uniform 4K SST increase", kind="atmos"),
    Experiment(
        "amip-p4K", "CFMIP", 1979, 2014, "AMIP with patterned 4K SST increase", kind="atmos"
    ),
    Experiment(
        "1pctCO2-bgc",
        "C4MIP",
        1850,
        1999,
        "biogeochemically-coupled version of 1 percent per year increasing CO2 experiment",
        needs="BGC",
    ),
    Experiment(
        "esm-ssp585",
        "C4MIP",
        2015,
        2100,
        "emission-driven SSP5-8.5 scenario",
        needs="BGC",
    ),
    Experiment(
        "hist-piNTCF",
        "AerChemMIP",
        1850,
        2014,
        "historical forcing, but with pre-industrial NTCF emissions",
        needs="AER",
    ),
    Experiment(
        "ssp370-lowNTCF",
        "AerChemMIP",
        2015,
        2055,
        "SSP3-7.0, with low NTCF emissions",
        needs="AER",
    ),
    Experiment(
        "highresSST-present",
        "HighResMIP",
        1950,
        2014,
        "forced atmosphere experiment for 1950-2014",
        kind="atmos",
        sources=("CNRM-CM6-1", "EC-Earth3", "MRI-ESM2-0"),
    ),
    Experiment(
        "past1000",
        "PMIP",
        850,
        1849,
        "last millennium",
        sources=("MRI-ESM2-0", "MIROC6"),
    ),
    Experiment(
        "lgm",
        "PMIP",
        1850,
        1949,
        "last glacial maximum",
        sources=("MIROC6", "MPI-ESM1-2-LR", "INM-CM5-0"),
    ),
    Experiment(
        "G6solar",
        "GeoMIP",
        2020,
        2100,
        "total solar irradiance reduction to reduce net forcing from SSP585 to SSP245",
        sources=("CESM2", "CNRM-ESM2-1", "IPSL-CM6A-LR", "MPI-ESM1-2-LR", "UKESM1-0-LL"),
    ),
    Experiment(
        "dcppA-hindcast",
        "DCPP",
        1961,
        2029,
        "hindcast initialized based on observations and using historical forcing",
        sources=("CanESM5", "EC-Earth3", "IPSL-CM6A-LR", "MIROC6", "MPI-ESM1-2-LR"),
        sub_experiments=_HINDCAST_STARTS,
    ),
)
EXPERIMENTS: dict[str, Experiment] = {e.experiment_id: e for e in _EXPERIMENT_LIST}
ACTIVITIES: tuple[str, ...] = tuple(sorted({e.activity_id for e in _EXPERIMENT_LIST}))


def var(
    variable_id: str,
    standard_name: str,
    long_name: str,
    units: str,
    levels: int = 1,
    frequency: str | None = None,
    realm: str | None = None,
) -> Variable:
    return Variable(variable_id, standard_name, long_name, units, levels, frequency, realm)


TAS = ("tas", "air_temperature", "Near-Surface Air Temperature", "K")
PR = ("pr", "precipitation_flux", "Precipitation", "kg m-2 s-1")
PSL = ("psl", "air_pressure_at_mean_sea_level", "Sea Level Pressure", "Pa")
UAS = ("uas", "eastward_wind", "Eastward Near-Surface Wind", "m s-1")
VAS = ("vas", "northward_wind", "Northward Near-Surface Wind", "m s-1")
HUSS = ("huss", "specific_humidity", "Near-Surface Specific Humidity", "1")
CLT = ("clt", "cloud_area_fraction", "Total Cloud Cover Percentage", "%")
RSDS = (
    "rsds",
    "surface_downwelling_shortwave_flux_in_air",
    "Surface Downwelling Shortwave Radiation",
    "W m-2",
)
_HFLS = ("hfls", "surface_upward_latent_heat_flux", "Surface Upward Latent Heat Flux", "W m-2")
_TOS = ("tos", "sea_surface_temperature", "Sea Surface Temperature", "degC")
_SOS = ("sos", "sea_surface_salinity", "Sea Surface Salinity", "0.001")

_TABLE_LIST = (
    Table(
        "Amon",
        "mon",
        "atmos",
        "atmos",
        (
            var(*TAS),
            var(*PR),
            var(*PSL),
            var("ts", "surface_temperature", "Surface Temperature", "K"),
            var(*UAS),
            var(*VAS),
            var(*HUSS),
            var(*CLT),
            var(*RSDS),
            var("rlut", "toa_outgoing_longwave_flux", "TOA Outgoing Longwave Radiation", "W m-2"),
            var(*_HFLS),
            var("ta", "air_temperature", "Air Temperature", "K", 19),
            var("ua", "eastward_wind", "Eastward Wind", "m s-1", 19),
            var("zg", "geopotential_height", "Geopotential Height", "m", 19),
            var("hur", "relative_humidity", "Relative Humidity", "%", 19),
        ),
    ),
    Table(
        "Omon",
        "mon",
        "ocean",
        "ocean",
        (
            var(*_TOS),
            var(*_SOS),
            var("zos", "sea_surface_height_above_geoid", "Sea Surface Height Above Geoid", "m"),
            var(
                "mlotst",
                "ocean_mixed_layer_thickness_defined_by_sigma_t",
                "Ocean Mixed Layer Thickness Defined by Sigma T",
                "m",
            ),
            var(
                "thetao",
                "sea_water_potential_temperature",
                "Sea Water Potential Temperature",
                "degC",
                50,
            ),
            var("so", "sea_water_salinity", "Sea Water Salinity", "0.001", 50),
            var("uo", "sea_water_x_velocity", "Sea Water X Velocity", "m s-1", 50),
        ),
    ),
    Table(
        "day",
        "day",
        "atmos",
        "atmos",
        (
            var(*TAS),
            var("tasmax", "air_temperature", "Daily Maximum Near-Surface Air Temperature", "K"),
            var("tasmin", "air_temperature", "Daily Minimum Near-Surface Air Temperature", "K"),
            var(*PR),
            var(*PSL),
            var(*UAS),
            var(*VAS),
            var("sfcWind", "wind_speed", "Daily-Mean Near-Surface Wind Speed", "m s-1"),
            var(*HUSS),
            var(*RSDS),
        ),
    ),
    Table(
        "3hr",
        "3hr",
        "atmos",
        "atmos",
        (
            var(*TAS, frequency="3hrPt"),
            var(*UAS, frequency="3hrPt"),
            var(*VAS, frequency="3hrPt"),
            var(*HUSS, frequency="3hrPt"),
            var("ps", "surface_air_pressure", "Surface Air Pressure", "Pa", frequency="3hrPt"),
            var(*PR),
            var(*CLT),
            var(*RSDS),
            var(*_HFLS),
        ),
    ),
    Table(
        "fx",
        "fx",
        "atmos",
        "atmos",
        (
            var(
                "areacella",
                "cell_area",
                "Grid-Cell Area for Atmospheric Grid Variables",
                "m2",
                realm="atmos land",
            ),
            var("orog", "surface_altitude", "Surface Altitude", "m", realm="land"),
            var(
                "sftlf",
                "land_area_fraction",
                "Percentage of the grid cell occupied by land (including lakes)",
                "%",
            ),
            var(
                "mrsofc",
                "soil_moisture_content_at_field_capacity",
                "Capacity of Soil to Store Water (Field Capacity)",
                "kg m-2",
                realm="land",
            ),
            var(
                "sftgif",
                "land_ice_area_fraction",
                "Percentage of the Grid Cell Covered by Glacier",
                "%",
                realm="land",
            ),
        ),
    ),
    Table(
        "Lmon",
        "mon",
        "land",
        "atmos",
        (
            var("mrso", "mass_content_of_water_in_soil", "Total Soil Moisture Content", "kg m-2"),
            var("mrro", "runoff_flux", "Total Runoff", "kg m-2 s-1"),
            var("mrros", "surface_runoff_flux", "Surface Runoff", "kg m-2 s-1"),
            var("lai", "leaf_area_index", "Leaf Area Index", "1"),
            var(
                "gpp",
                "gross_primary_productivity_of_biomass_expressed_as_carbon",
                "Carbon Mass Flux out of Atmosphere Due to Gross Primary Production on Land "
                "[kgC m-2 s-1]",
                "kg m-2 s-1",
            ),
            var("cVeg", "vegetation_carbon_content", "Carbon Mass in Vegetation", "kg m-2"),
            var("tsl", "soil_temperature", "Temperature of Soil", "K", 10),
        ),
    ),
    Table(
        "SImon",
        "mon",
        "seaIce",
        "ocean",
        (
            var("siconc", "sea_ice_area_fraction", "Sea-Ice Area Percentage (Ocean Grid)", "%"),
            var("sithick", "sea_ice_thickness", "Sea-Ice Thickness", "m"),
            var("simass", "sea_ice_amount", "Sea-Ice Mass per Area", "kg m-2"),
            var("sisnthick", "surface_snow_thickness", "Snow Thickness", "m"),
            var("siu", "sea_ice_x_velocity", "X-Component of Sea-Ice Velocity", "m s-1"),
        ),
    ),
    Table(
        "Oday",
        "day",
        "ocean",
        "ocean",
        (
            var(*_TOS),
            var(*_SOS),
            var(
                "omldamax",
                "ocean_mixed_layer_thickness_defined_by_mixing_scheme",
                "Daily Maximum Ocean Mixed Layer Thickness Defined by Mixing Scheme",
                "m",
            ),
        ),
    ),
)
TABLES: dict[str, Table] = {t.table_id: t for t in _TABLE_LIST}

# Tables whose variables exist for a run with prescribed sea surface (``kind="atmos"``).
ATMOS_ONLY_TABLES = frozenset({"Amon", "day", "3hr", "fx", "Lmon"})
# High-frequency output is not archived for very long runs.
LONG_RUN_YEARS = 200
HIGH_FREQUENCY_TABLES = frozenset({"day", "3hr", "Oday"})

GRID_LABELS = ("gn", "gr", "gr1")
DATA_SPECS_VERSIONS = ("01.00.28", "01.00.29", "01.00.30", "01.00.31", "01.00.32")
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
