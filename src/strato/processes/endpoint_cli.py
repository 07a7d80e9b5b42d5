"""`strato endpoint ...`: this node's processes served to other nodes (over ZeroMQ with
CURVE keys, over HTTP as the OGC API itself, or from a Celery queue), and the keys for
ZeroMQ."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from fastapi import FastAPI

    from strato.processes.zeromq.server import EndpointServer

endpoint_app = typer.Typer(
    help="Serve this node's processes to other nodes (ZeroMQ, HTTP or a Celery queue); CURVE keys.",
    no_args_is_help=True,
)


@endpoint_app.command("keys")
def keys(
    directory: Annotated[Path, typer.Argument(help="Where to write the key files.")],
    name: Annotated[str, typer.Option(help="NAME.key (public), NAME.key_secret.")] = "client",
) -> None:
    """A new CURVE key pair: one for the server, and one for each client (whose public
    key the server's allow-list directory holds)."""
    from strato.processes.zeromq.keys import create

    public, secret = create(directory, name)
    typer.echo(f"public: {public}\nsecret: {secret}")


@endpoint_app.command("serve")
def serve(
    ctx: typer.Context,
    zmq: Annotated[
        str | None, typer.Option("--zmq", help="Address to serve on (tcp://127.0.0.1:5555).")
    ] = None,
    http: Annotated[
        str | None, typer.Option("--http", help="HOST:PORT for the OGC API over HTTP.")
    ] = None,
    key: Annotated[
        Path | None, typer.Option("--key", help="zmq: the server's secret key file.")
    ] = None,
    allow: Annotated[
        Path | None,
        typer.Option("--allow", help="zmq: the directory of allowed client public keys."),
    ] = None,
    process: Annotated[
        list[str] | None, typer.Option("--process", help="Offer only these (default: all).")
    ] = None,
    celery: Annotated[
        str | None,
        typer.Option(
            "--celery",
            help="A Celery broker URL (redis://..., amqp://...): run a worker taking this "
            "node's processes from --queue.",
        ),
    ] = None,
    queue: Annotated[
        str | None, typer.Option("--queue", help="celery: the queue to take processes from.")
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, help="celery: worker processes (one run each); default jobs.workers."),
    ] = None,
    loglevel: Annotated[str, typer.Option(help="celery: Celery's log level.")] = "WARNING",
    visibility_timeout: Annotated[
        float,
        typer.Option(
            min=60,
            help="celery on Redis: seconds before an unacknowledged run is delivered again "
            "(a worker that died whole); longer than any run.",
        ),
    ] = 12 * 3600,
) -> None:
    """Serve this node's processes over ZeroMQ and/or HTTP, or from a Celery queue, until
    stopped."""
    from strato.app import create_app
    from strato.cli import state
    from strato.context import Context
    from strato.logs import configure_logging
    from strato.processes.zeromq.server import EndpointServer

    if celery:
        if zmq or http:
            typer.echo("error: --celery runs a worker alone: not with --zmq or --http", err=True)
            raise typer.Exit(2)
        if not queue:
            typer.echo("error: --celery needs --queue (the provider's queue)", err=True)
            raise typer.Exit(2)
        _serve_celery(ctx, celery, queue, process or (), concurrency, loglevel, visibility_timeout)
        return
    if not zmq and not http:
        typer.echo(
            "error: say where: --zmq ADDRESS and/or --http HOST:PORT, or --celery BROKER",
            err=True,
        )
        raise typer.Exit(2)
    if zmq and (key is None or allow is None):
        typer.echo("error: --zmq needs --key (secret key file) and --allow (directory)", err=True)
        raise typer.Exit(2)
    more: dict[str, Any] = {}
    if http:
        host, _, port = http.rpartition(":")
        more = {"host": host or "127.0.0.1", "port": int(port)}
    settings = state(ctx).settings(**more)
    configure_logging(settings.log)
    c = Context.open(settings)
    c.serve_only = True
    web = create_app(settings, context=c)
    server = None
    if zmq:
        assert key is not None
        assert allow is not None
        service = web.state.processes
        server = EndpointServer(
            service,
            zmq,
            server_key=key,
            allowed=allow,
            result_root=Path(service.jobs.result_root),
            processes=process or (),
        )
    try:
        if http:
            _serve_http(web, settings.host, settings.port, server)
        else:
            assert server is not None
            asyncio.run(_serve_zmq(web, server))
    finally:
        c.close()


def _serve_celery(
    ctx: typer.Context,
    broker: str,
    queue: str,
    processes: list[str] | tuple[()],
    concurrency: int | None,
    loglevel: str,
    visibility_timeout: float,
) -> None:
    from strato.cli import state
    from strato.jobs.settings import JobsSettings
    from strato.logs import configure_logging
    from strato.processes.celery_endpoint import serve as serve_celery

    settings = state(ctx).settings()
    configure_logging(settings.log)
    workers = concurrency or JobsSettings.of(settings).pool_size
    serve_celery(
        settings,
        broker,
        queue,
        processes=processes,
        concurrency=workers,
        loglevel=loglevel,
        visibility_timeout=visibility_timeout,
    )


def _announce(server: EndpointServer | None, web: str | None) -> None:
    import sys

    if server is not None:
        typer.echo(f"  zmq:       {server.bound}")
    if web is not None:
        typer.echo(f"  web:       {web}/")
    sys.stdout.flush()


async def _serve_zmq(web: FastAPI, server: EndpointServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with web.router.lifespan_context(web):
        started = asyncio.Event()
        task = loop.create_task(server.serve(started))
        waiting = loop.create_task(started.wait())
        await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            waiting.cancel()
            task.result()  # raises why it could not start
        _announce(server, None)
        halt = loop.create_task(stop.wait())
        await asyncio.wait({task, halt}, return_when=asyncio.FIRST_COMPLETED)
        task.cancel()
        halt.cancel()


def _serve_http(web: FastAPI, host: str, port: int, server: EndpointServer | None) -> None:
    from strato.server import bind
    from strato.server import serve as serve_web

    sock = bind(host, port)
    base = f"http://{host}:{sock.getsockname()[1]}"
    if server is not None:
        # The ZeroMQ server lives as long as the web app, in its event loop.
        inner = web.router.lifespan_context

        @asynccontextmanager
        async def both(app: FastAPI) -> AsyncIterator[Any]:
            async with inner(app) as state:
                started = asyncio.Event()
                task = asyncio.get_running_loop().create_task(server.serve(started))
                await started.wait()
                _announce(server, base)
                try:
                    yield state
                finally:
                    task.cancel()

        web.router.lifespan_context = both
    else:
        _announce(None, base)
    serve_web(web, sock)
