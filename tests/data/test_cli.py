"""`strato data` as a user runs it."""

from __future__ import annotations

from pathlib import Path

from tests.test_cli import run


def test_add_list_remove(tmp_path: Path, netcdf_yearly_files: list[Path]) -> None:
    env = {"STRATO_DATA_ALLOWED_ROOTS": f'["{tmp_path}"]'}
    state = tmp_path / "state"
    glob = str(netcdf_yearly_files[0].parent / "tas_mon_*.nc")
    added = run(["data", "add", glob, "--id", "yearly", "--chunks", "time=6"], state, env=env)
    assert added.returncode == 0, added.stderr
    assert "3 file(s)" in added.stdout
    listing = run(["data", "list"], state, env=env).stdout
    assert "yearly" in listing
    assert " ok " in listing
    assert run(["data", "remove", "yearly"], state, env=env).returncode == 0
    assert "yearly" not in run(["data", "list"], state, env=env).stdout


def test_bad_registrations_say_why(tmp_path: Path, netcdf_file: Path) -> None:
    state = tmp_path / "state"
    outside = run(["data", "add", str(netcdf_file), "--id", "x"], state)
    assert outside.returncode == 2
    assert "outside the allowed roots" in outside.stderr
    env = {"STRATO_DATA_ALLOWED_ROOTS": f'["{tmp_path}"]'}
    bad_chunks = run(
        ["data", "add", str(netcdf_file), "--id", "x", "--chunks", "time"], state, env=env
    )
    assert bad_chunks.returncode == 2
    assert "time=100" in bad_chunks.stderr
    assert "Traceback" not in outside.stderr + bad_chunks.stderr


def test_data_add_with_roots_set_for_that_command_is_served_by_the_running_server(
    tmp_path: Path, netcdf_yearly_files: list[Path]
) -> None:
    """The README's tour: the server runs with its own settings; `strato data add` is run
    with STRATO_DATA_ALLOWED_ROOTS set for that command only."""
    import httpx
    import xarray as xr

    from tests.test_up import strato_up

    state = tmp_path / "state"
    files = netcdf_yearly_files[0].parent
    with strato_up(state) as up:
        added = run(
            ["data", "add", f"{files}/tas_mon_*.nc", "--id", "my-tas", "--chunks", "time=120"],
            state,
            env={"STRATO_DATA_ALLOWED_ROOTS": f'["{files}"]'},
        )
        assert added.returncode == 0, added.stderr
        listed = httpx.get(f"{up.url}/api/datasets", timeout=60).json()
        assert [(s["id"], s["state"], s["reason"]) for s in listed] == [("my-tas", "ok", None)]
        served = xr.open_dataset(f"{up.url}/datasets/my-tas/zarr/", engine="zarr")
        with xr.open_mfdataset(netcdf_yearly_files) as source:
            xr.testing.assert_equal(served.tas, source.tas)
        # The command line without the variable says the same as the server.
        assert " ok " in run(["data", "list"], state).stdout
