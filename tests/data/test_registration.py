"""Registrations are saved only once their data opened; a failure that passes does not
leave a dataset broken."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.data.conftest import cf_dataset, cf_encoding
from tests.data.test_http import Node, make_node
from tests.test_up import strato_up


@pytest.fixture
def node(tmp_path: Path, serve: Callable[[Any], str]) -> Iterator[Node]:
    # Broken datasets are tried again at once, so the test need not wait.
    yield from make_node(tmp_path, serve, broken_retry_seconds=0)


def states(node: Node) -> dict[str, str]:
    return {s["id"]: s["state"] for s in node.http.get("/api/datasets").json()}


def test_a_dataset_broken_for_a_moment_is_served_again_without_its_files_changing(
    node: Node, netcdf_file: Path
) -> None:
    assert node.register("flaky", [str(netcdf_file)]).status_code == 201
    good = netcdf_file.read_bytes()
    # The file is unreadable for a moment (as a half-copied file, or an HDF error of two
    # threads in libhdf5 at once were): the dataset is reported broken.
    netcdf_file.write_bytes(b"\0" * len(good))
    later = time.time_ns() + 5 * 10**9
    os.utime(netcdf_file, ns=(later, later))
    time.sleep(1.1)  # past the cache's once-a-second check of the files
    assert states(node) == {"flaky": "broken"}
    # Then readable again with the very same size and modification time.
    netcdf_file.write_bytes(good)
    os.utime(netcdf_file, ns=(later, later))
    assert states(node) == {"flaky": "ok"}
    assert node.http.get("/datasets/flaky/info").status_code == 200


def server_has_open(pid: int, directory: Path) -> bool:
    """Whether process ``pid`` holds a file under ``directory`` open."""
    fds = Path(f"/proc/{pid}/fd")
    for fd in fds.iterdir() if fds.exists() else []:
        try:
            if os.readlink(fd).startswith(f"{directory}/"):
                return True
        except OSError:
            continue
    return False


def test_a_registration_killed_before_its_data_opened_leaves_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    many = data_dir / "many"
    many.mkdir(parents=True)
    # Enough files that opening them all takes a while: the server is killed meanwhile.
    for i in range(150):
        ds = cf_dataset(start=f"{1800 + i}-01-01", months=12, nlat=4, nlon=8)
        ds.to_netcdf(many / f"tas_{1800 + i}.nc", engine="netcdf4", encoding=cf_encoding(ds))
    body = {"id": "slow", "sources": [f"{many}/tas_*.nc"]}
    with strato_up(data_dir) as up:
        token = re.search(r"^\s+(strato_\S+)$", up.banner, flags=re.M)
        assert token, up.banner
        auth = {"Authorization": f"Bearer {token.group(1)}"}
        answers: list[int | str] = []

        def post() -> None:
            try:
                answers.append(
                    httpx.post(
                        f"{up.url}/api/datasets", json=body, headers=auth, timeout=300
                    ).status_code
                )
            except httpx.TransportError as exc:
                answers.append(type(exc).__name__)

        client = threading.Thread(target=post)
        client.start()
        deadline = time.monotonic() + 120
        while not server_has_open(up.proc.pid, many):
            assert time.monotonic() < deadline, "the server never opened the files"
            time.sleep(0.005)
        up.proc.kill()  # SIGKILL while it opens the files
        up.proc.wait(timeout=30)
        client.join(timeout=60)
        assert answers
        assert not isinstance(answers[0], int), answers  # killed mid-request, unanswered

    with strato_up(data_dir) as up:
        assert httpx.get(f"{up.url}/api/datasets", timeout=60).json() == []
        again = httpx.post(f"{up.url}/api/datasets", json=body, headers=auth, timeout=300)
        assert again.status_code == 201, again.text
        listed = httpx.get(f"{up.url}/api/datasets", timeout=60).json()
        assert [(s["id"], s["state"], s["files"]) for s in listed] == [("slow", "ok", 150)]
