"""`strato stream serve|cert`: run a gateway's control server, make its certificate; the
client's commands are in :mod:`strato.stream.client_cli`."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from strato.errors import InvalidInput

stream_app = typer.Typer(
    help="Streaming between facilities (SciStream-compatible): the gateway's control server.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    from strato.stream.client_cli import register_client

    register_client(stream_app)
    app.add_typer(stream_app, name="stream")


def _settings(ctx: typer.Context, **overrides: Any) -> Any:
    from strato.cli import CliState
    from strato.settings import load_settings
    from strato.stream.settings import StreamSettings

    obj = ctx.find_root().obj
    settings = obj.settings() if isinstance(obj, CliState) else load_settings()
    try:
        base = StreamSettings.of(settings)
    except LookupError:  # the stream capability is not switched on: its defaults
        base = StreamSettings()
    given = {k: v for k, v in overrides.items() if v is not None}
    return StreamSettings.model_validate({**base.model_dump(), **given})


@stream_app.command("serve")
def serve(
    ctx: typer.Context,
    listen: Annotated[str | None, typer.Option(help="host:port of the control server.")] = None,
    port_range: Annotated[
        str | None, typer.Option("--port-range", help="Data ports, FIRST-LAST.")
    ] = None,
    data_host: Annotated[str | None, typer.Option(help="Address listeners bind.")] = None,
    advertise_host: Annotated[
        str | None, typer.Option(help="Address clients reach listeners at.")
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM key.")] = None,
    insecure: Annotated[bool, typer.Option(help="No TLS (development only).")] = False,
    backend: Annotated[str | None, typer.Option(help="builtin, haproxy or stunnel.")] = None,
) -> None:
    """Serve scistream.Control (req, hello, update, release) and strato's Sessions."""
    from strato.context import Context
    from strato.stream.control.auth import either, introspector, strato_tokens
    from strato.stream.control.server import start
    from strato.stream.dataserver.base import DataServerError

    first = last = None
    if port_range is not None:
        try:
            first, last = (int(p) for p in port_range.split("-", 1))
        except ValueError:
            raise InvalidInput(f"--port-range {port_range!r}: expected FIRST-LAST") from None
    settings = _settings(
        ctx,
        listen=listen,
        port_first=first,
        port_last=last,
        data_host=data_host,
        advertise_host=advertise_host,
        tls_cert=tls_cert,
        tls_key=tls_key,
        insecure=insecure or None,
        backend=backend,
    )
    from strato.cli import state
    from strato.stream.dataserver import factory

    c = Context.open(state(ctx).settings())
    state_dir = settings.state_dir or c.settings.data_dir / "stream"
    dataserver = factory.create(settings.backend, state_dir, settings.warm_forwarders)

    async def run() -> None:
        # start() first stops the forwarders a previous control server left (their
        # markers in state_dir), so their ports are free for the new pool.
        oauth = introspector(settings)
        authenticate = either(strato_tokens(c.identities), oauth)
        server = await start(settings, dataserver, authenticate)
        mode = "TLS" if settings.tls_cert else "INSECURE (no TLS)"
        leg = "TLS legs" if settings.leg_tls else "PLAINTEXT legs"
        tokens = "strato tokens" + (", OAuth2 introspection" if oauth else "")
        typer.echo(
            f"control server on {settings.listen} port {server.port}, {mode}, "
            f"{settings.backend} data server, {leg}, {tokens}"
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()
        if oauth is not None:
            await oauth.aclose()

    try:
        asyncio.run(run())
    except (DataServerError, ValueError, OSError) as exc:
        # What keeps the gateway from starting (its state directory taken, its port in
        # use, no certificate): one line, no traceback.
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        c.close()


@stream_app.command("cert")
def cert(
    names: Annotated[
        list[str], typer.Argument(help="The gateway's addresses or names (IP or DNS).")
    ],
    cert_out: Annotated[Path, typer.Option("--cert", help="Certificate file.")] = Path(
        "server.crt"
    ),
    key_out: Annotated[Path, typer.Option("--key", help="Private key file (mode 600).")] = Path(
        "server.key"
    ),
    days: Annotated[int, typer.Option(min=1, help="Days valid.")] = 825,
) -> None:
    """Make a self-signed certificate with NAMES as subject alternative names."""
    from strato.stream.control import certs

    certs.write(cert_out, key_out, names, days)
    typer.echo(f"certificate {cert_out}, key {key_out} for {', '.join(names)}")
