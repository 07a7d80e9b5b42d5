"""The command line, run as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

STRATO = [sys.executable, "-m", "strato"]


def run(
    args: list[str], data_dir: Path, *, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}
    full_env.update(env or {})
    return subprocess.run(
        [*STRATO, "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=stdin,
        timeout=120,
    )


def commands_in(help_text: str) -> dict[str, str]:
    section = help_text.split("Commands:", 1)[1]
    return dict(re.findall(r"^\s{2}(\S+)\s{2,}(\S.*)$", section, flags=re.M))


def test_help_lists_every_command_with_a_description(tmp_path: Path) -> None:
    top = commands_in(run(["--help"], tmp_path).stdout)
    assert {"up", "api", "version", "db", "user", "token", "config"} <= top.keys()
    for group in ("db", "user", "token", "config"):
        sub = commands_in(run([group, "--help"], tmp_path).stdout)
        assert sub, group
        assert all(desc.strip() for desc in sub.values()), (group, sub)
    assert all(desc.strip() for desc in top.values())


def test_version(tmp_path: Path) -> None:
    from strato import __version__

    assert run(["version"], tmp_path).stdout.strip() == __version__


def test_users_and_tokens_from_the_command_line(tmp_path: Path) -> None:
    created = run(
        ["user", "create", "lena", "--scope", "read,publish", "--password-stdin"],
        tmp_path,
        stdin="lena-password\n",
    )
    assert created.returncode == 0, created.stderr
    token = run(
        ["token", "create", "--user", "lena", "--scope", "publish", "--expires", "30d"], tmp_path
    )
    assert token.returncode == 0, token.stderr
    secret = token.stdout.strip()
    assert secret.startswith("strato_")

    listing = run(["token", "list"], tmp_path).stdout
    assert "lena" in listing
    assert "publish" in listing
    assert secret not in listing
    token_id = re.search(r"token (\w+) for lena", token.stderr)
    assert token_id
    assert run(["token", "revoke", token_id.group(1)], tmp_path).returncode == 0
    assert "revoked" in run(["token", "list", "--user", "lena"], tmp_path).stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["token", "create", "--user", "ghost"], 3, "no user named 'ghost'"),
        (["user", "create", "x", "--scope", "read,wirte"], 2, "unknown scope 'wirte'"),
        (["user", "create", "bad name!"], 2, "invalid user name"),
        (["token", "revoke", "nosuch"], 3, "no token with id 'nosuch'"),
    ],
)
def test_errors_are_one_clear_line(
    args: list[str], code: int, message: str, tmp_path: Path
) -> None:
    run(["db", "upgrade"], tmp_path)
    r = run(args, tmp_path)
    assert r.returncode == code, r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_invalid_setting_names_the_field(tmp_path: Path) -> None:
    r = run(["config", "show"], tmp_path, env={"STRATO_PORT": "eighty"})
    assert r.returncode == 2
    assert "invalid configuration: port" in r.stderr
    assert "Traceback" not in r.stderr


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    r = run(
        ["config", "show"],
        tmp_path,
        env={"STRATO_DATABASE_URL": "postgresql://app:hunter22@db.internal/strato"},
    )
    shown = json.loads(r.stdout)
    assert shown["database_url"] == "postgresql://app:***@db.internal/strato"
    assert shown["data_dir"] == str(tmp_path)


def test_db_upgrade_on_each_database(database_url: str, tmp_path: Path) -> None:
    r = run(["db", "upgrade"], tmp_path, env={"STRATO_DATABASE_URL": database_url})
    assert r.returncode == 0, r.stderr
    # One revision per schema history: the core's, then each capability's.
    assert re.search(
        r"at revision core_\d{4} data_\d{4} catalog_\d{4} jobs_\d{4} pipelines_\d{4}$",
        r.stdout.strip(),
    )
    current = run(["db", "current"], tmp_path, env={"STRATO_DATABASE_URL": database_url}).stdout
    assert "current: empty" not in current
    now, head = (line.split(":", 1)[1].strip() for line in current.splitlines())
    assert now == head


def test_unreachable_database_is_reported(tmp_path: Path) -> None:
    r = run(
        ["db", "upgrade"],
        tmp_path,
        env={"STRATO_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/x?connect_timeout=2"},
    )
    assert r.returncode == 6
    assert "database not reachable" in r.stderr
    assert "Traceback" not in r.stderr


def test_config_show_masks_bus_and_query_passwords(tmp_path: Path) -> None:
    r = run(
        ["config", "show"],
        tmp_path,
        env={
            "STRATO_DATABASE_URL": "postgresql://app@db.internal/strato?password=hunter22",
            "STRATO_BUS_URL": "nats://user:buspass99@127.0.0.1:4222",
        },
    )
    assert r.returncode == 0, r.stderr
    assert "hunter22" not in r.stdout
    assert "buspass99" not in r.stdout
    shown = json.loads(r.stdout)
    assert shown["database_url"] == "postgresql://app@db.internal/strato?password=***"
    assert shown["bus"]["url"] == "nats://user:***@127.0.0.1:4222"


def test_token_revoke_revokes_the_tokens_it_minted(
    tmp_path: Path, serve: Callable[[Any], str]
) -> None:
    from strato.app import create_app
    from strato.context import Context
    from strato.settings import LogSettings, Settings

    run(["user", "create", "mona", "--scope", "read"], tmp_path)
    made = run(["token", "create", "--user", "mona", "--expires", "1h"], tmp_path)
    assert made.returncode == 0, made.stderr
    parent = made.stdout.strip()
    parent_id = re.search(r"token (\w+) for mona", made.stderr)
    assert parent_id

    # The command line revokes in another process: a server trusting tokens it checked
    # lately would hear of it within auth.token_cache_seconds; without the cache, at once.
    settings = Settings(
        data_dir=tmp_path, log=LogSettings(access=False), auth={"token_cache_seconds": 0}
    )
    ctx = Context.open(settings)
    try:
        url = serve(create_app(settings, context=ctx))
        with httpx.Client(base_url=url) as http:
            # A token minted with the parent, asking for nothing: it ends with the parent.
            child = http.post(
                "/api/tokens",
                json={"scopes": ["read"]},
                headers={"Authorization": f"Bearer {parent}"},
            ).json()
            assert child["parent_id"] == parent_id.group(1)
            mine = {"Authorization": f"Bearer {child['token']}"}
            assert http.get("/api/me", headers=mine).status_code == 200

            revoked = run(["token", "revoke", parent_id.group(1)], tmp_path)
            assert revoked.returncode == 0, revoked.stderr
            assert child["id"] in revoked.stdout
            assert http.get("/api/me", headers=mine).status_code == 401
    finally:
        ctx.close()
    listing = run(["token", "list", "--user", "mona"], tmp_path).stdout
    rows = {line.split()[0]: line for line in listing.splitlines()[1:]}
    assert "revoked" in rows[child["id"]]
    assert parent_id.group(1) in rows[child["id"]]  # the PARENT column
