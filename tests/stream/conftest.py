"""Fixtures of the data server tests: a data server of each backend on its own state
directory, closed at the end whatever happened."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from strato.stream.dataserver.builtin import BuiltinDataServer
from strato.stream.dataserver.haproxy import HAProxyDataServer
from strato.stream.dataserver.proxied import ProxiedDataServer
from strato.stream.dataserver.stunnel import StunnelDataServer


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow_idle: waits past haproxy's old 50 s idle cut-off on purpose (~55 s)"
    )


DataServerUnderTest = BuiltinDataServer | ProxiedDataServer


def make(backend: str, state: Path) -> DataServerUnderTest:
    if backend == "builtin":
        return BuiltinDataServer(state)
    binary = {"haproxy": "haproxy", "stunnel": "stunnel4"}[backend]
    if shutil.which(binary) is None:
        pytest.skip(f"{binary} is not installed (scripts/test-deps.sh installs it)")
    if backend == "haproxy":
        return HAProxyDataServer(state)
    return StunnelDataServer(state)


@pytest_asyncio.fixture
async def dataserver(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[DataServerUnderTest]:
    ds = make(request.param, tmp_path / "state")
    try:
        yield ds
    finally:
        await ds.close_all()
