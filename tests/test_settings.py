from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from pydantic import ValidationError

from strato.errors import InvalidInput
from strato.settings import Settings, load_settings


def test_default_database_is_a_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    assert s.database_url_value == f"sqlite:///{tmp_path / 'strato.db'}"
    assert s.base_url == "http://127.0.0.1:8000"


def test_environment_reaches_top_level_and_sections(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STRATO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STRATO_PORT", "9100")
    monkeypatch.setenv("STRATO_AUTH_ANONYMOUS_READ", "false")
    monkeypatch.setenv("STRATO_LOG_FORMAT", "json")
    s = Settings()
    assert (s.data_dir, s.port, s.auth.anonymous_read, s.log.format) == (
        tmp_path,
        9100,
        False,
        "json",
    )


def test_toml_file_is_read_and_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = tmp_path / "strato.toml"
    cfg.write_text('node_name = "east"\nport = 9001\n[auth]\nanonymous_read = false\n')
    monkeypatch.setenv("STRATO_PORT", "9002")
    s = load_settings(cfg)
    assert s.node_name == "east"
    assert s.auth.anonymous_read is False
    assert s.port == 9002


def test_unknown_key_in_toml_is_refused_by_name(tmp_path: Path) -> None:
    cfg = tmp_path / "strato.toml"
    cfg.write_text("prot = 1\n")
    with pytest.raises(ValidationError, match="prot"):
        load_settings(cfg)


def test_missing_config_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_public_dump_masks_database_password(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, database_url="postgresql://u:hunter22@db/strato")  # type: ignore[arg-type]
    dumped = s.public_dump()
    assert "hunter22" not in str(dumped)
    assert dumped["database_url"] == "postgresql://u:***@db/strato"


def test_sign_in_limits_are_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STRATO_AUTH_FAILURES_PER_USER", "4")
    monkeypatch.setenv("STRATO_AUTH_FAILURE_WINDOW", "300")
    s = Settings(data_dir=tmp_path)
    assert (s.auth.failures_per_user, s.auth.failure_window) == (4, 300)
    assert (s.auth.failures_per_address, s.auth.failure_tracking) == (30, 10_000)
    monkeypatch.setenv("STRATO_AUTH_FAILURE_TRACKING", "0")
    with pytest.raises(ValidationError, match="failure_tracking"):
        Settings(data_dir=tmp_path)


def test_settings_with_capability_sections_travel_to_another_process(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, node_name="east", catalog={"max_limit": 5})  # type: ignore[call-arg]
    copy = pickle.loads(pickle.dumps(s))  # noqa: S301 (made here)
    assert copy == s
    assert (copy.node_name, copy.catalog.max_limit) == ("east", 5)
