"""The base install runs the embedded default; an engine whose extra is missing says which.

"Not installed" is made real in a subprocess: ``sys.modules[name] = None`` makes every
import of ``name`` fail as it fails when the package is absent. Nothing is faked about the
services: the PostgreSQL, MariaDB and NATS addresses are never reached, because the driver
is looked for before any connection is made.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from strato.extras import EXTRAS

# Every optional driver, blocked the way a missing package blocks it.
BLOCK = "import sys\nfor _m in {mods!r}:\n    sys.modules[_m] = None\n"
OPTIONAL = sorted(EXTRAS)


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", BLOCK.format(mods=OPTIONAL) + code, *args]


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}
    return env | {"STRATO_DATA_DIR": str(tmp_path / "data"), "STRATO_DATA_DEMO": "false", **extra}


CLI = "from strato.cli import main\nsys.argv[0] = 'strato'\nmain()\n"


def test_up_serves_on_the_base_install_without_any_optional_driver(tmp_path: Path) -> None:
    log = tmp_path / "up.log"
    proc = subprocess.Popen(
        python(CLI, "up", "--port", "0"),
        env=clean_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = ""
        deadline = time.monotonic() + 90
        while "web:" not in banner:
            line = proc.stdout.readline()
            assert line, f"strato up exited: {proc.wait()}; {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, banner
            banner += line
        found = re.search(r"web:\s+(http://\S+)/", banner)
        assert found, banner
        url = found.group(1)
        while True:
            try:
                ready = httpx.get(f"{url}/readyz", timeout=10)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize(
    ("url", "extra"),
    [
        ("postgresql://postgres@127.0.0.1:5432/strato_missing_extra", "postgres"),
        ("mysql://root@127.0.0.1:3306/strato_missing_extra", "mysql"),
    ],
)
def test_a_database_without_its_driver_names_the_extra(
    tmp_path: Path, url: str, extra: str
) -> None:
    done = subprocess.run(
        python(CLI, "db", "upgrade"),
        env=clean_env(tmp_path, STRATO_DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"pip install 'strato[{extra}]'" in lines[0]


# What opens each optional engine, as the platform opens it.
OPENERS = {
    "nats": "from strato.bus import open_bus\nopen_bus('nats://127.0.0.1:4222', Path(d))",
    "kafka": "from strato.bus import open_bus\nopen_bus('kafka://127.0.0.1:9092', Path(d))",
    "dask-distributed": (
        "from strato.data.datasets.compute import configure_dask\n"
        "from strato.settings import Settings\n"
        "configure_dask(Settings(data_dir=Path(d), dask_scheduler='tcp://127.0.0.1:8786'))"
    ),
}


@pytest.mark.parametrize("extra", sorted(OPENERS))
def test_an_engine_without_its_driver_names_the_extra(tmp_path: Path, extra: str) -> None:
    code = (
        "from pathlib import Path\nfrom strato.extras import MissingExtra\nd = sys.argv[1]\n"
        f"try:\n    {OPENERS[extra].replace(chr(10), chr(10) + '    ')}\n"
        "except MissingExtra as exc:\n    print(exc.detail)\nelse:\n    print('opened')\n"
    )
    done = subprocess.run(
        python(code, str(tmp_path)),
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"pip install 'strato[{extra}]'"), done.stdout


def test_a_module_missing_elsewhere_keeps_its_own_error() -> None:
    from strato.extras import optional_driver

    with pytest.raises(ModuleNotFoundError, match="no_such_module_here"), optional_driver():
        import no_such_module_here  # type: ignore[import-not-found]  # noqa: F401


def test_up_on_a_bus_without_its_driver_stops_with_one_line_naming_the_extra(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        python(CLI, "up", "--port", "0"),
        env=clean_env(tmp_path, STRATO_BUS_URL="nats://127.0.0.1:4222"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].endswith("pip install 'strato[nats]'"), lines[0]
