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
