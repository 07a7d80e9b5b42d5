"""Realistic CMIP6 and CORDEX STAC items, as ESGF's next-generation index holds them.

Facets are drawn consistently from :mod:`strato.catalog.demo.vocab`; ids follow each project's
DRS; each file of a dataset is one asset, its name following the DRS and split by time as
real archives are, with a size, a sha2-256 multihash checksum and a handle tracking id.

The same seed gives the same items. The node only changes where the data is said to be
(``data_node``, hrefs, links), so two nodes generating with one seed publish the same
datasets, as a replica would.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import zlib
from collections.abc import Callable, Iterator, Sequence
from datetime import date, timedelta
from typing import Any, Literal, TypeVar

from strato.catalog.demo import vocab
from strato.catalog.demo import vocab_cordex as cordex
from strato.catalog.model.geometry import polygon
from strato.errors import InvalidInput

Project = Literal["CMIP6", "CORDEX"]
PROJECTS: tuple[Project, ...] = ("CMIP6", "CORDEX")

STAC_VERSION = "1.1.0"
# The extensions ESGF's transaction API expects on items of each collection.
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "CMIP6": (
        "https://esgf.github.io/stac-transaction-api/cmip6/v2.0.0/schema.json",
        "https://stac-extensions.github.io/alternate-assets/v1.2.0/schema.json",
        "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    ),
    "CORDEX": (
        "https://esgf.github.io/stac-transaction-api/cordex-cmip6/v1.2.1/schema.json",
        "https://stac-extensions.github.io/alternate-assets/v1.2.0/schema.json",
        "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    ),
}
# Handle prefixes of the two projects' file PIDs.
HANDLE_PREFIX = {"CMIP6": "hdl:21.14100/", "CORDEX": "hdl:21.14103/"}
GLOBAL_BBOX = (-180.0, -90.0, 180.0, 90.0)

T = TypeVar("T")


class _Weighted:
    """A fast weighted choice: one random number and a bisection."""

    __slots__ = ("_cumulative", "_items", "_total")

    def __init__(self, weighted: Sequence[tuple[Any, float]]) -> None:
        self._items = [item for item, _ in weighted]
        self._cumulative = list(itertools.accumulate(weight for _, weight in weighted))
        self._total = self._cumulative[-1]

    def pick(self, rng: random.Random) -> Any:
        return self._items[bisect.bisect(self._cumulative, rng.random() * self._total)]


def _rng(project: str, seed: int) -> random.Random:
    # Reproducible synthetic records, not secrets: a seeded PRNG is what is wanted.
    return random.Random(f"strato:{project}:{seed}")  # noqa: S311


def _crc(text: str) -> int:
    # Stable across processes, unlike hash() of a str.
    return zlib.crc32(text.encode())


def _dates(first: date, days: int) -> list[tuple[str, str]]:
    """``(YYYYMMDD, YYYY-MM-DD)`` for ``days`` consecutive days."""
    out = []
    for n in range(days):
        day = first + timedelta(days=n)
        out.append((day.strftime("%Y%m%d"), day.isoformat()))
    return out


def _esgf_properties(
    project: str,
    base_id: str,
    version: str,
    start: str,
    end: str,
    created: str,
    size: int,
    node: str,
) -> dict[str, Any]:
    """What every ESGF record carries, whatever its project."""
    return {
        "datetime": None,
        "start_datetime": start,
        "end_datetime": end,
        "created": created,
        "updated": created,
        "title": base_id,
        "project": project,
        "base_id": base_id,
        "version": version,
        "latest": True,
        "retracted": False,
        "replica": False,
        "size": size,
        "data_node": node,
        "access": ["HTTPServer"],
    }


def _links(stac_url: str, collection: str, item_id: str) -> list[dict[str, str]]:
    collection_url = f"{stac_url}/collections/{collection}"
    return [
        {
            "rel": "self",
            "type": "application/geo+json",
            "href": f"{collection_url}/items/{item_id}",
        },
        {"rel": "parent", "type": "application/json", "href": collection_url},
        {"rel": "collection", "type": "application/json", "href": collection_url},
        {"rel": "root", "type": "application/json", "href": f"{stac_url}/"},
    ]


# --- time: file name stamps and item datetimes per frequency ------------------------------

# frequency -> (first time of a year in a file name, last, first as hh:mm:ss, last)
_STAMPS = {
    "3hr": ("0130", "2230", "01:30:00", "22:30:00"),
    "3hrPt": ("0000", "2100", "00:00:00", "21:00:00"),
    "1hr": ("0030", "2330", "00:30:00", "23:30:00"),
    "6hr": ("0000", "1800", "00:00:00", "18:00:00"),
}


def _last_day(calendar: str) -> str:
    return "30" if calendar == "360_day" else "31"


def _file_range(frequency: str, y0: int, y1: int, calendar: str) -> str:
    last = _last_day(calendar)
    if frequency == "mon":
        return f"{y0:04d}01-{y1:04d}12"
    if frequency == "day":
        return f"{y0:04d}0101-{y1:04d}12{last}"
    first_stamp, last_stamp = _STAMPS[frequency][:2]
    return f"{y0:04d}0101{first_stamp}-{y1:04d}12{last}{last_stamp}"


def _datetimes(frequency: str, y0: int, y1: int, calendar: str) -> tuple[str, str]:
    """start_datetime and end_datetime: the first and last time values of the files."""
    last = _last_day(calendar)
    if frequency == "mon":
        return f"{y0:04d}-01-16T12:00:00Z", f"{y1:04d}-12-16T12:00:00Z"
    if frequency == "day":
        return f"{y0:04d}-01-01T12:00:00Z", f"{y1:04d}-12-{last}T12:00:00Z"
    if frequency == "fx":
        return f"{y0:04d}-01-01T00:00:00Z", f"{y1:04d}-12-{last}T23:59:59Z"
    first_time, last_time = _STAMPS[frequency][2:]
    return f"{y0:04d}-01-01T{first_time}Z", f"{y1:04d}-12-{last}T{last_time}Z"


def _chunks(y0: int, y1: int, years: int, align: int | None) -> list[tuple[int, int]]:
    """Year ranges of the files: ``years`` each from ``y0``, or, with ``align``, breaking
    before every year ``y`` with ``(y - align) % years == 0`` (CORDEX: 1951, 1956, ...)."""
    out = []
    start = y0
    while start <= y1:
        end = start + years - 1 if align is None else start + (align - 1 - start) % years
        end = min(end, y1)
        out.append((start, end))
        start = end + 1
    return out


def _steps_per_year(frequency: str, calendar: str) -> float:
    steps = vocab.STEPS_PER_YEAR[frequency]
    return steps * vocab.DAYS_IN_YEAR.get(calendar, 365) / 365 if frequency != "mon" else steps


# --- the generators -----------------------------------------------------------------------


# One 384-bit draw per file: a sha2-256 digest and, in its low 128 bits, a UUID whose
# version (4) and variant (RFC 4122) bits are set here, as uuid.uuid4() would.
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)


class _Files:
    """One dataset's files as assets, and their total size."""

    def __init__(self, rng: random.Random, project: str, node: str) -> None:
        self._bits = rng.getrandbits
        self._handle = HANDLE_PREFIX[project]
        self._tracking_key = f"{project.lower()}:tracking_id"
        self._node = node

    def assets(
        self,
        names: list[str],
        sizes: list[int],
        directory: str,
        data_url: str,
    ) -> tuple[dict[str, dict[str, Any]], int]:
        bits, handle, node, key = self._bits, self._handle, self._node, self._tracking_key
        href = f"{data_url}/{directory}/"
        local = f"{directory}/"
        assets: dict[str, dict[str, Any]] = {}
        for name, size in zip(names, sizes, strict=True):
            h = f"{(bits(384) & _UUID_CLEAR) | _UUID_SET:096x}"
            assets[name] = {
                "href": href + name,
                "type": "application/netcdf",
                "roles": ["data"],
                "description": "HTTPServer Link",
                "alternate:name": node,
                "alternate": {},
                "file:size": size,
                "file:checksum": "1220" + h[:64],
                "file:local_path": local + name,
                key: f"{handle}{h[64:72]}-{h[72:76]}-{h[76:80]}-{h[80:84]}-{h[84:]}",
            }
        return assets, sum(sizes)


def _unique(seen: set[str], make: Callable[[int], tuple[str, T]], first: int) -> tuple[str, T]:
    """The first of ``make(n)``, ``make(n + 1)``, ... whose id is new; ids stay unique.

    A repeat of drawn facets becomes another ensemble member (or realization), which is
    how a real archive comes to hold the same facets twice.
    """
    n = first
    while True:
        item_id, extra = make(n)
        if item_id not in seen:
            seen.add(item_id)
            return item_id, extra
        n += 1


_EXPERIMENT_WEIGHTS = {
    "historical": 12,
    "piControl": 5,
    "amip": 5,
    "abrupt-4xCO2": 3,
    "1pctCO2": 3,
    "esm-hist": 2,
    "ssp126": 6,
    "ssp245": 7,
    "ssp370": 6,
    "ssp585": 7,
    "ssp119": 2,
    "hist-GHG": 2,
    "hist-aer": 2,
    "hist-nat": 2,
    "dcppA-hindcast": 3,
}
_TABLE_WEIGHTS = {
    "Amon": 30,
    "Omon": 12,
    "day": 15,
    "3hr": 5,
    "fx": 3,
    "Lmon": 10,
    "SImon": 6,
    "Oday": 3,
}
# Ensemble sizes: most datasets are of the first member.
_REALIZATIONS = _Weighted([(1, 55), (2, 15), (3, 12), *((r, 2.5) for r in range(4, 11))])
# frequency -> the years per file a model may choose (by model), for 2-D and 3-D fields.
_CMIP6_CHUNKS = {
    "mon": ((0, 50, 100), (10, 20, 50)),
    "day": ((10, 20, 50), (5, 10, 10)),
    "3hr": ((5, 10, 20), (5, 5, 5)),
    "3hrPt": ((5, 10, 20), (5, 5, 5)),
}
_MAX_FILES = 40


class _Cmip6:
    def __init__(self, seed: int, node: str, data_url: str, stac_url: str) -> None:
        self.rng = _rng("CMIP6", seed)
        self.node, self.data_url, self.stac_url = node, data_url, stac_url
        self.files = _Files(self.rng, "CMIP6", node)
        self.seen: set[str] = set()
        self.experiments = _Weighted(
            [(e, _EXPERIMENT_WEIGHTS.get(e.experiment_id, 1)) for e in vocab.EXPERIMENTS.values()]
        )
        self.sources: dict[str, list[vocab.Source]] = {}
        self.tables: dict[str, _Weighted] = {}
        for exp in vocab.EXPERIMENTS.values():
            self.sources[exp.experiment_id] = [
                s
                for s in vocab.SOURCES.values()
                if (not exp.sources or s.source_id in exp.sources)
                and (exp.needs is None or exp.needs in s.source_type)
            ]
            long_run = exp.end_year - exp.start_year + 1 > vocab.LONG_RUN_YEARS
            self.tables[exp.experiment_id] = _Weighted(
                [
                    (t, _TABLE_WEIGHTS[t.table_id])
                    for t in vocab.TABLES.values()
                    if (exp.kind == "coupled" or t.table_id in vocab.ATMOS_ONLY_TABLES)
                    and not (long_run and t.table_id in vocab.HIGH_FREQUENCY_TABLES)
                ]
            )
        self.source_index = {s: i for i, s in enumerate(vocab.SOURCES)}
        self.versions = _dates(date(2018, 11, 1), 1600)
        self.extensions = EXTENSIONS["CMIP6"]

    def item(self) -> dict[str, Any]:
        rng = self.rng
        exp = self.experiments.pick(rng)
        source = rng.choice(self.sources[exp.experiment_id])
        table = self.tables[exp.experiment_id].pick(rng)
        var = rng.choice(table.variables)
        sub = rng.choice(exp.sub_experiments) if exp.sub_experiments else 0
        grid = source.atmos_grid if table.grid == "atmos" else source.ocean_grid
        # One institution per simulation, as in the real archive.
        institution = source.institutions[_crc(exp.experiment_id) % len(source.institutions)]
        prefix = f"CMIP6.{exp.activity_id}.{institution}.{source.source_id}.{exp.experiment_id}."
        suffix = f".{table.table_id}.{var.variable_id}.{grid}"
        sub_id = f"s{sub}" if sub else "none"

        def make(r: int) -> tuple[str, tuple[str, str, int]]:
            variant = f"r{r}i1p{source.physics}f{source.forcing}"
            member = f"s{sub}-{variant}" if sub else variant
            # A simulation's datasets are published together, under one version.
            when = _crc(f"{source.source_id}/{exp.experiment_id}/{member}")
            version = self.versions[when % len(self.versions)][0]
            return f"{prefix}{member}{suffix}.v{version}", (variant, member, when)

        item_id, (variant, member, when) = _unique(self.seen, make, _REALIZATIONS.pick(rng))
        version, version_day = self.versions[when % len(self.versions)]
        base_id = item_id[: -len(version) - 2]

        frequency = table.frequency_of(var)
        y0, y1 = (sub + 1, sub + 10) if sub else (exp.start_year, exp.end_year)
        cells = source.atmos_cells if table.grid == "atmos" else source.ocean_cells
        ratio = 0.35 + 0.4 * rng.random()
        stem = (
            f"{var.variable_id}_{table.table_id}_{source.source_id}_{exp.experiment_id}_"
            f"{member}_{grid}"
        )
        if frequency == "fx":
            names = [f"{stem}.nc"]
            sizes = [int(cells * 4 * ratio) + 20_000]
        else:
            years_options = _CMIP6_CHUNKS[frequency][var.levels > 1]
            years = years_options[self.source_index[source.source_id] % 3] or (y1 - y0 + 1)
            years = max(years, math.ceil((y1 - y0 + 1) / _MAX_FILES))
            per_year = cells * var.levels * 4 * ratio * _steps_per_year(frequency, source.calendar)
            names, sizes = [], []
            for a, b in _chunks(y0, y1, years, None):
                names.append(f"{stem}_{_file_range(frequency, a, b, source.calendar)}.nc")
                sizes.append(int(per_year * (b - a + 1) * (0.97 + 0.06 * rng.random())))
        start, end = _datetimes(frequency, y0, y1, source.calendar)
        directory = "CMIP6/" + base_id[6:].replace(".", "/") + f"/v{version}"
        assets, size = self.files.assets(names, sizes, directory, self.data_url)
        created = f"{version_day}T{when % 24:02d}:{when % 60:02d}:{(when >> 8) % 60:02d}Z"
        return {
            "type": "Feature",
            "stac_version": STAC_VERSION,
            "stac_extensions": list(self.extensions),
            "id": item_id,
            "collection": "CMIP6",
            "geometry": polygon(GLOBAL_BBOX),
            "bbox": list(GLOBAL_BBOX),
            "properties": {
                **_esgf_properties("CMIP6", base_id, version, start, end, created, size, self.node),
                "cmip6:mip_era": "CMIP6",
                "cmip6:activity_id": [exp.activity_id],
                "cmip6:institution_id": institution,
                "cmip6:source_id": source.source_id,
                "cmip6:source_type": list(source.source_type),
                "cmip6:experiment_id": exp.experiment_id,
                "cmip6:experiment": exp.description,
                "cmip6:sub_experiment_id": sub_id,
                "cmip6:member_id": member,
                "cmip6:variant_label": variant,
                "cmip6:table_id": table.table_id,
                "cmip6:variable_id": var.variable_id,
                "cmip6:variable_long_name": var.long_name,
                "cmip6:variable_units": var.units,
                "cmip6:variable_cf_standard_name": var.standard_name,
                "cmip6:frequency": frequency,
                "cmip6:realm": table.realm_of(var).split(),
                "cmip6:grid_label": grid,
                "cmip6:nominal_resolution": source.nominal_resolution,
                "cmip6:product": "model-output",
                "cmip6:data_specs_version": vocab.DATA_SPECS_VERSIONS[
                    when % len(vocab.DATA_SPECS_VERSIONS)
                ],
                "cmip6:further_info_url": (
                    f"https://furtherinfo.es-doc.org/CMIP6.{institution}.{source.source_id}."
                    f"{exp.experiment_id}.{sub_id}.{variant}"
                ),
            },
            "links": _links(self.stac_url, "CMIP6", item_id),
            "assets": assets,
        }


_DRIVING_WEIGHTS = {
    "evaluation": 2,
    "historical": 4,
    "ssp126": 2,
    "ssp245": 1,
    "ssp370": 3,
    "ssp585": 2,
}
_CORDEX_FREQUENCY_WEIGHTS = {"mon": 30, "day": 35, "3hr": 10, "6hr": 5, "1hr": 5, "fx": 5}
# frequency -> years per file in the CORDEX-CMIP6 archive, files breaking at years ending in 1.
_CORDEX_CHUNKS = {"mon": 10, "day": 5, "6hr": 1, "3hr": 1, "1hr": 1}


class _Cordex:
    def __init__(self, seed: int, node: str, data_url: str, stac_url: str) -> None:
        self.rng = _rng("CORDEX", seed)
        self.node, self.data_url, self.stac_url = node, data_url, stac_url
        self.files = _Files(self.rng, "CORDEX", node)
        self.seen: set[str] = set()
        self.models = list(cordex.REGIONAL_MODELS.values())
        self.experiments = _Weighted(
            [(e, _DRIVING_WEIGHTS[e.experiment_id]) for e in cordex.DRIVING_EXPERIMENTS.values()]
        )
        self.frequencies = _Weighted(list(_CORDEX_FREQUENCY_WEIGHTS.items()))
        self.variables: dict[str, list[vocab.Variable]] = {
            f: [v for v, fs in cordex.CORDEX_VARIABLES.values() if f in fs]
            for f in cordex.CORDEX_FREQUENCIES
        }
        self.drivers = [vocab.SOURCES[s] for s in cordex.DRIVING_SOURCES]
        self.versions = _dates(date(2023, 3, 1), 1000)
        self.extensions = EXTENSIONS["CORDEX"]

    def item(self) -> dict[str, Any]:
        rng = self.rng
        model = rng.choice(self.models)
        institution = rng.choice(model.institutions)
        domain = cordex.DOMAINS[rng.choice(model.domains)]
        exp = self.experiments.pick(rng)
        frequency = self.frequencies.pick(rng)
        var = rng.choice(self.variables[frequency])
        rcm_version = rng.choice(model.versions)
        if exp.experiment_id == "evaluation":
            driver, calendar, physics, forcing = cordex.REANALYSIS, "proleptic_gregorian", 0, 0
        else:
            source = rng.choice(self.drivers)
            driver, calendar = source.source_id, source.calendar
            physics, forcing = source.physics, source.forcing

        def make(r: int) -> tuple[str, tuple[str, str, int]]:
            # A reanalysis has no ensemble: a repeat becomes another realization of the RCM.
            if driver == cordex.REANALYSIS:
                variant = "none"
                realization = rcm_version if r == 1 else f"{rcm_version.split('-')[0]}-r{r}"
            else:
                variant, realization = f"r{r}i1p{physics}f{forcing}", rcm_version
            run = (
                f"{domain.domain_id}.{institution}.{driver}.{exp.experiment_id}.{variant}."
                f"{model.source_id}.{realization}"
            )
            when = _crc(run)
            version = self.versions[when % len(self.versions)][0]
            item_id = f"CORDEX.DD.{run}.{frequency}.{var.variable_id}.v{version}"
            return item_id, (variant, realization, when)

        first = 1 if driver == cordex.REANALYSIS else _REALIZATIONS.pick(rng)
        item_id, (variant, realization, when) = _unique(self.seen, make, first)
        version, version_day = self.versions[when % len(self.versions)]
        base_id = item_id[: -len(version) - 2]

        y0, y1 = exp.start_year, exp.end_year
        ratio = 0.35 + 0.4 * rng.random()
        stem = (
            f"{var.variable_id}_{domain.domain_id}_{driver}_{exp.experiment_id}_{variant}_"
            f"{institution}_{model.source_id}_{realization}_{frequency}"
        )
        if frequency == "fx":
            names = [f"{stem}.nc"]
            sizes = [int(domain.cells * 4 * ratio) + 20_000]
        else:
            per_year = domain.cells * 4 * ratio * _steps_per_year(frequency, calendar)
            names, sizes = [], []
            for a, b in _chunks(y0, y1, _CORDEX_CHUNKS[frequency], 1):
                names.append(f"{stem}_{_file_range(frequency, a, b, calendar)}.nc")
                sizes.append(int(per_year * (b - a + 1) * (0.97 + 0.06 * rng.random())))
        start, end = _datetimes(frequency, y0, y1, calendar)
        directory = base_id.replace(".", "/") + f"/v{version}"
        assets, size = self.files.assets(names, sizes, directory, self.data_url)
        created = f"{version_day}T{when % 24:02d}:{when % 60:02d}:{(when >> 8) % 60:02d}Z"
        return {
            "type": "Feature",
            "stac_version": STAC_VERSION,
            "stac_extensions": list(self.extensions),
            "id": item_id,
            "collection": "CORDEX",
            "geometry": polygon(domain.bbox),
            "bbox": list(domain.bbox),
            "properties": {
                **_esgf_properties(
                    "CORDEX", base_id, version, start, end, created, size, self.node
                ),
                "cordex:project_id": "CORDEX",
                "cordex:mip_era": "CMIP6",
                "cordex:activity_id": "DD",
                "cordex:domain_id": domain.domain_id,
                "cordex:domain": domain.name,
                "cordex:institution_id": institution,
                "cordex:driving_source_id": driver,
                "cordex:driving_experiment_id": exp.experiment_id,
                "cordex:driving_experiment": exp.description,
                "cordex:driving_variant_label": variant,
                "cordex:source_id": model.source_id,
                "cordex:source_type": model.source_type,
                "cordex:version_realization": realization,
                "cordex:frequency": frequency,
                "cordex:variable_id": var.variable_id,
                "cordex:variable_long_name": var.long_name,
                "cordex:variable_units": var.units,
                "cordex:variable_cf_standard_name": var.standard_name,
                "cordex:realm": "atmos",
                "cordex:product": "model-output",
            },
            "links": _links(self.stac_url, "CORDEX", item_id),
            "assets": assets,
        }


def check(project: str, count: int) -> None:
    if project not in PROJECTS:
        raise InvalidInput(f"unknown project {project!r}: one of {', '.join(PROJECTS)}")
    if count < 0:
        raise InvalidInput(f"count must not be negative, not {count}")


def generate_items(
    count: int,
    *,
    project: Project = "CMIP6",
    seed: int = 0,
    node: str = "east",
    data_url: str | None = None,
    stac_url: str | None = None,
) -> Iterator[dict[str, Any]]:
    """``count`` STAC items of ``project``, ids unique, the same ones for the same seed.

    ``data_url`` is where the files are said to be served (default
    ``https://data.<node>.example/thredds/fileServer``), ``stac_url`` the STAC API of the
    links (default ``https://stac.<node>.example``).
    """
    check(project, count)
    data = (data_url or f"https://data.{node}.example/thredds/fileServer").rstrip("/")
    stac = (stac_url or f"https://stac.{node}.example").rstrip("/")
    maker = (_Cmip6 if project == "CMIP6" else _Cordex)(seed, node, data, stac)
    # Not a generator function itself, so bad arguments fail at the call, not at first use.
    return (maker.item() for _ in range(count))

