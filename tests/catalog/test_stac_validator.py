"""stac-api-validator, the STAC community's conformance checker, run against a real node.

The validator checks each Item and Collection it sees against the JSON Schemas of STAC
and of the extensions the documents name, which it downloads. Here nothing may leave
the machine: the schemas come from the installed packages, and a guard refuses any
connection (and name lookup) that is not to loopback, so a check that would need the
network fails loudly instead of passing by accident.

What cannot be checked offline: the JSON Schemas of the *extensions* the generated
items declare (ESGF CMIP6/CORDEX, alternate-assets, file) ship with no installed
package, so they resolve to a schema that accepts anything; the core Item, Collection
and GeoJSON schemas are the real ones, from pystac. Asset hrefs (on hosts of the
publishing data nodes) are not fetched; the validator only records them as unreachable.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Iterator
from typing import Any

import click
import pytest
import stac_validator.utilities as schema_source
from pystac.validation.local_validator import get_local_schema_cache
from stac_api_validator.__main__ import main as validator_cli

from strato.app import create_app
from strato.catalog.demo.generator import generate_items
from strato.catalog.settings import CatalogSettings
from strato.settings import LogSettings, Settings
from tests.catalog.holding import catalog_holding
from tests.conftest import ThreadedServer

CONFORMANCE = ("core", "features", "item-search", "filter")

# Hosts of JSON Schemas of STAC extensions: no installed package ships them.
_EXTENSION_HOSTS = ("https://stac-extensions.github.io/", "https://esgf.github.io/")
_ANYTHING: dict[str, Any] = {"$schema": "http://json-schema.org/draft-07/schema#"}

_offline = False


def _is_loopback(host: object) -> bool:
    if host in ("localhost", None):
        return True
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return False


def _guard(event: str, args: tuple[Any, ...]) -> None:
    # An audit hook cannot be removed: it acts only while a validation runs.
    if not _offline:
        return
    if event == "socket.getaddrinfo" and not _is_loopback(args[0]):
        raise OSError(f"offline test: no name lookup of {args[0]!r}")
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            raise OSError(f"offline test: no connection to {address!r}")


sys.addaudithook(_guard)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """No network; schemas from the installed packages. Yields the schema URLs asked for."""
    global _offline
    local = get_local_schema_cache()
    fetch = schema_source.fetch_and_parse_file
    asked: list[str] = []

    def from_packages(path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        asked.append(path)
        if path in local:
            return local[path]
        if path.startswith(_EXTENSION_HOSTS):
            return _ANYTHING
        return fetch(path, headers)

    monkeypatch.setattr(schema_source, "fetch_and_parse_file", from_packages)
    schema_source.fetch_and_parse_schema.cache_clear()  # type: ignore[attr-defined]
    _offline = True
    try:
        yield asked
    finally:
        _offline = False
        schema_source.fetch_and_parse_schema.cache_clear()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def stac_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("validator") / "data",
        log=LogSettings(access=False),
        catalog=CatalogSettings(consume=False),
    )
    items = list(generate_items(20, seed=11)) + list(generate_items(12, project="CORDEX", seed=11))
    ctx = catalog_holding(settings, items)
    with ThreadedServer(create_app(settings, context=ctx)) as server:
        yield f"{server.url}/stac"
    ctx.close()


def run_validator(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The validator's own command line, in this process (where the guard holds)."""
    try:
        validator_cli.main(list(args), standalone_mode=False)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    except click.ClickException as exc:
        code, _ = exc.exit_code, exc.show()
    return code, capsys.readouterr().out


def test_the_catalog_passes_core_features_item_search_and_filter(
    stac_url: str, offline: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    flags = [arg for cc in CONFORMANCE for arg in ("--conformance", cc)]
    code, out = run_validator(
        capsys,
        "--root-url",
        f"{stac_url}/",
        # The regional collection: the validator makes a bbox that misses an item by
        # adding 1 degree to its east and north, which for a global CMIP6 item is
        # 181,91 (outside WGS 84, rightly 400 here).
        "--collection",
        "CORDEX",
        "--log-level",
        "WARNING",
        *flags,
    )
    assert "Errors: none" in out, out
    assert code == 0, out
    # The real core schemas were used, so the Items and Collections were validated.
    assert any(url.endswith("item-spec/json-schema/item.json") for url in offline), offline
    assert any(url.endswith("collection-spec/json-schema/collection.json") for url in offline)
