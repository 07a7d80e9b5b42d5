"""Credentials never shown: the one masking rule, and every place a URL is printed or logged."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from strato.bus.factory import open_bus
from strato.errors import InvalidInput, Unavailable
from strato.logs import configure_logging
from strato.redact import mask_secrets, mask_url
from strato.settings import LogSettings, Settings


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("nats://user:pw@127.0.0.1:4222", "nats://user:***@127.0.0.1:4222"),
        ("nats://tok3n@127.0.0.1:4222", "nats://***@127.0.0.1:4222"),
        ("nats://u:pw@a:4222,b:4222?stream=S", "nats://u:***@a:4222,b:4222?stream=S"),
        (
            "postgresql://u@db/strato?sslmode=require&password=hunter22",
            "postgresql://u@db/strato?sslmode=require&password=***",
        ),
        ("mysql://u:p%40ss@db:3306/x?charset=utf8mb4", "mysql://u:***@db:3306/x?charset=utf8mb4"),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("amqp://guest:guest@mq:5672//", "amqp://guest:***@mq:5672//"),
        (
            "kafka://h:9092?sasl_password=x&Token=y&KEY=z",
            "kafka://h:9092?sasl_password=***&Token=***&KEY=***",
        ),
        (
            "postgresql://db/x?sslpassword=k&pwd=a&pass=b&secret=c",
            "postgresql://db/x?sslpassword=***&pwd=***&pass=***&secret=***",
        ),
        ("https://example.org/a?b=c", "https://example.org/a?b=c"),
        ("sqlite:////data/strato.db", "sqlite:////data/strato.db"),
        ("not a url", "not a url"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_mask_secrets_in_free_text() -> None:
    text = (
        "cannot connect to NATS at nats://a:pw1@h:1, nats://b:pw2@k:2: refused; "
        "dsn host=x password=pw3"
    )
    masked = mask_secrets(text)
    assert "pw1" not in masked
    assert "pw2" not in masked
    assert "pw3" not in masked
    assert "nats://a:***@h:1, nats://b:***@k:2: refused; dsn host=x password=***" in masked


def test_config_show_dump_masks_every_url(tmp_path: Path) -> None:
    s = Settings(
        data_dir=tmp_path,
        database_url="postgresql://u@db/strato?password=hunter22",  # type: ignore[arg-type]
        bus={"url": "nats://user:buspass@127.0.0.1:4222"},  # type: ignore[arg-type]
        catalog={"peers": {"west": "https://peer:peerpass@west.example/"}},  # type: ignore[arg-type]
    )
    shown = json.dumps(s.public_dump())
    for secret in ("hunter22", "buspass", "peerpass"):
        assert secret not in shown
    assert "nats://user:***@127.0.0.1:4222" in shown


def test_logged_urls_are_masked_in_text_and_json(capfd: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    try:
        for fmt in ("text", "json"):
            configure_logging(LogSettings(format=fmt))
            log = logging.getLogger("strato.test")
            log.warning("event bus unreachable (%s)", "nats://user:hunter22@127.0.0.1:4222")
            try:
                raise Unavailable("cannot connect to postgresql://u@db/x?password=hunter22")
            except Unavailable:
                log.exception("failed")
            err = capfd.readouterr().err
            assert "hunter22" not in err
            assert "nats://user:***@127.0.0.1:4222" in err
            assert "password=***" in err
    finally:
        root.handlers[:] = before[0]
        root.setLevel(before[1])


def test_bus_errors_never_name_the_password(tmp_path: Path) -> None:
    # A refused connection: nothing listens on port 9 of loopback.
    bus = open_bus("nats://user:hunter22@127.0.0.1:9?connect_timeout=2", tmp_path)
    with pytest.raises(Unavailable) as caught:
        asyncio.run(bus.start())
    assert "hunter22" not in caught.value.detail
    assert "user:***@127.0.0.1:9" in caught.value.detail
    with pytest.raises(InvalidInput) as bad:
        open_bus("nats://user:hunter22@127.0.0.1:4222?nope=1", tmp_path)
    assert "hunter22" not in bad.value.detail


def test_strato_up_never_prints_the_bus_password(tmp_path: Path) -> None:
    """`strato up` with a NATS URL carrying a password, nothing listening: whatever it
    says about the bus (banner, warnings, an error line) names the server, never the
    password."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}
    env |= {"STRATO_DATA_DEMO": "false", "STRATO_BUS_URL": "nats://user:hunter22@127.0.0.1:9"}
    out = tmp_path / "out.log"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "strato",
                "--data-dir",
                str(tmp_path / "d"),
                "up",
                "--port",
                "0",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            deadline = time.monotonic() + 60
            while "127.0.0.1:9" not in out.read_text() and proc.poll() is None:
                assert time.monotonic() < deadline, out.read_text()[-2000:]
                time.sleep(0.2)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    said = out.read_text()
    assert "user:***@127.0.0.1:9" in said
    assert "hunter22" not in said


def test_publication_reports_mask_peer_credentials(
    settings: Settings, serve: Callable[[Any], str]
) -> None:
    from strato.app import create_app
    from strato.context import Context

    peers = {"west": "http://user:hunter22@127.0.0.1:9/"}
    settings = settings.model_copy(
        update={"catalog": settings.catalog.model_copy(update={"peers": peers})}
    )
    ctx = Context.open(settings)
    ctx.migrate()
    try:
        url = serve(create_app(settings, context=ctx))
        r = httpx.get(f"{url}/stac/publications/req-1", timeout=30)
    finally:
        ctx.close()
    assert r.status_code == 200, r.text
    assert "hunter22" not in r.text
    west = next(n for n in r.json()["nodes"] if n["node"] == "west")
    assert west["url"] == "http://user:***@127.0.0.1:9/"


def test_readiness_names_an_unreachable_bus_without_its_password(
    settings: Settings, serve: Callable[[Any], str]
) -> None:
    from strato.app import create_app
    from strato.context import Context

    bus = settings.bus.model_copy(update={"url": "nats://user:hunter22@127.0.0.1:9"})
    settings = settings.model_copy(update={"bus": bus})
    ctx = Context.open(settings)
    ctx.migrate()
    try:
        url = serve(create_app(settings, context=ctx))
        deadline = time.monotonic() + 60
        while True:
            r = httpx.get(f"{url}/readyz", timeout=30)  # anonymous, as any prober
            assert "hunter22" not in r.text
            if "127.0.0.1:9" in r.text or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        ctx.close()
    assert r.status_code == 503
    assert "user:***@127.0.0.1:9" in r.text
