"""`strato stream inbound-request|outbound-request|release|hello|connect`: SciStream's
user client (s2uc) and application controller (appctrl) with their options and what
they print, and ``connect``, which sets up both gateways of a stream in one command."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

T = TypeVar("T")

Token = Annotated[
    str,
    typer.Option("--token", envvar="STRATO_TOKEN", help="A strato API token with scope stream."),
]
ServerCert = Annotated[
    Path | None,
    typer.Option(
        "--server_cert",
        "--server-cert",
        envvar="STRATO_STREAM_SERVER_CERT",
        help="The control server's certificate (PEM), pinned.",
    ),
]
Insecure = Annotated[
    bool, typer.Option("--insecure", help="The control server has no TLS (development).")
]
NumConn = Annotated[int, typer.Option("--num_conn", "--num-conn", min=1, help="Listeners.")]
Rate = Annotated[int, typer.Option("--rate", min=0, help="Rate asked (SciStream's).")]
RemoteIp = Annotated[
    str, typer.Option("--remote_ip", "--remote-ip", help="The application's host.")
]
ReceiverPorts = Annotated[
    str,
    typer.Option(
        "--receiver_ports", "--receiver-ports", help="The application's ports, comma-separated."
    ),
]


def _run(coro: Awaitable[T]) -> T:
    from strato.stream.client import StreamClientError

    async def main() -> T:
        return await coro

    try:
        return asyncio.run(main())
    except StreamClientError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from None


def _list(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _app_listeners(remote_ip: str, receiver_ports: str) -> list[str]:
    try:
        ports = [int(p) for p in _list(receiver_ports)]
    except ValueError:
        raise typer.BadParameter(
            f"{receiver_ports!r}: ports are numbers, comma-separated",
            param_hint="--receiver_ports",
        ) from None
    return [f"{remote_ip}:{p}" for p in ports]


def _text(message: object) -> str:
    from google.protobuf import text_format

    return text_format.MessageToString(message).rstrip()  # type: ignore[arg-type]


def register_client(app: typer.Typer) -> None:
    app.command("inbound-request")(inbound_request)
    app.command("outbound-request")(outbound_request)
    app.command("release")(release)
    app.command("hello")(hello)
    app.command("connect")(connect)


def _side(
    s2cs: str,
    role: str,
    uid: str,
    app_listeners: list[str],
    targets: list[str] | None,
    num_conn: int,
    rate: int,
    mock: bool,
    token: str,
    gateway_cert: Path | None,
    insecure: bool,
) -> None:
    from strato.stream.client import Control, Gateway

    async def go() -> None:
        async with Control(Gateway(s2cs, gateway_cert, insecure), token) as c:
            typer.echo("sending client request message")
            typer.echo(uid)
            typer.echo("waiting for hello message")
            req = asyncio.ensure_future(c.req(uid, role, num_conn, rate))
            if mock:  # this client is the application controller too
                typer.echo("sending for hello message")
                # SciStream's client says PROD in the consumer's hello as well.
                await c.hello(uid, "PROD", app_listeners)
                typer.echo("Hello message sent successfully")
            resp = await req
            try:
                update = await c.update(uid, targets if targets else resp.prod_listeners)
            except BaseException:
                await asyncio.shield(c.release(uid))
                raise
            from strato.stream.proto import scistream_pb2 as pb

            # What SciStream's client prints: the reply as protobuf text.
            shown = pb.Response(listeners=resp.listeners, prod_listeners=update.prod_listeners)
            typer.echo(_text(shown))

    _run(go())


def inbound_request(
    token: Token,
    s2cs: Annotated[str, typer.Option("--s2cs", help="The producer gateway's control server.")] = (
        "localhost:5000"
    ),
    remote_ip: RemoteIp = "127.0.0.1",
    receiver_ports: ReceiverPorts = "5074",
    num_conn: NumConn = 5,
    rate: Rate = 10000,
    mock: Annotated[
        bool, typer.Option("--mock/--no-mock", help="Send the application's hello here.")
    ] = True,
    uid: Annotated[str | None, typer.Option(help="The session's uid (default: new).")] = None,
    server_cert: ServerCert = None,
    insecure: Insecure = False,
) -> None:
    """The producer's side (SciStream's inbound-request): a session on the producer's
    gateway forwarding to REMOTE_IP:RECEIVER_PORTS; prints its uid and listeners."""
    from strato.stream.client import new_uid

    listeners = _app_listeners(remote_ip, receiver_ports)
    _side(
        s2cs,
        "PROD",
        uid or new_uid(),
        listeners,
        None,
        num_conn,
        rate,
        mock,
        token,
        server_cert,
        insecure,
    )


def outbound_request(
    uid: Annotated[str, typer.Argument(help="The uid inbound-request printed.")],
    prod_listeners: Annotated[
        str, typer.Argument(help="The producer gateway's listeners, comma-separated.")
    ],
    token: Token,
    s2cs: Annotated[str, typer.Option("--s2cs", help="The consumer gateway's control server.")] = (
        "localhost:5000"
    ),
    remote_ip: RemoteIp = "127.0.0.1",
    receiver_ports: ReceiverPorts = "5074",
    num_conn: NumConn = 5,
    rate: Rate = 10000,
    mock: Annotated[
        bool, typer.Option("--mock/--no-mock", help="Send the application's hello here.")
    ] = True,
    server_cert: ServerCert = None,
    insecure: Insecure = False,
) -> None:
    """The consumer's side (SciStream's outbound-request): a session on the consumer's
    gateway forwarding to the producer gateway's PROD_LISTENERS."""
    _side(
        s2cs,
        "CONS",
        uid,
        _app_listeners(remote_ip, receiver_ports),
        _list(prod_listeners),
        num_conn,
        rate,
        mock,
        token,
        server_cert,
        insecure,
    )


def release(
    uid: Annotated[str, typer.Argument(help="The session's uid.")],
    token: Token,
    s2cs: Annotated[
        list[str], typer.Option("--s2cs", help="A control server (repeat for both sides).")
    ] = ["localhost:5000"],  # noqa: B006 - typer's list default
    server_cert: ServerCert = None,
    insecure: Insecure = False,
) -> None:
    """Release session UID on each gateway (idempotent)."""
    from strato.stream.client import Control, Gateway

    async def go() -> None:
        for address in s2cs:
            async with Control(Gateway(address, server_cert, insecure), token) as c:
                await c.release(uid)
            typer.echo("Release completed")

    _run(go())


def hello(
    uid: Annotated[str, typer.Argument(help="The session's uid.")],
    token: Token,
    s2cs: Annotated[str, typer.Option("--s2cs", help="The gateway's control server.")] = (
        "localhost:5000"
    ),
    role: Annotated[str, typer.Option(help="PROD or CONS.")] = "PROD",
    prod_listeners: Annotated[
        str, typer.Option("--prod_listeners", "--prod-listeners", help="ip:port, comma-separated.")
    ] = "",
    server_cert: ServerCert = None,
    insecure: Insecure = False,
) -> None:
    """The application controller's hello (SciStream's appctrl): tell the gateway where
    the application listens; prints the session's listeners."""
    from strato.stream.client import Control, Gateway

    async def go() -> None:
        async with Control(Gateway(s2cs, server_cert, insecure), token) as c:
            reply = await c.hello(uid, role.upper(), _list(prod_listeners))
            typer.echo(reply.message)
            typer.echo(_text(reply))

    _run(go())


def connect(
    token: Token,
    producer_gateway: Annotated[
        str, typer.Option("--producer-gateway", help="Producer gateway's control server.")
    ],
    consumer_gateway: Annotated[
        str, typer.Option("--consumer-gateway", help="Consumer gateway's control server.")
    ],
    producer_targets: Annotated[
        str, typer.Option("--producer-targets", help="Producer's ip:port, comma-separated.")
    ],
    num_conn: NumConn = 1,
    rate: Rate = 10000,
    uid: Annotated[str | None, typer.Option(help="The session's uid (default: new).")] = None,
    producer_cert: Annotated[
        Path | None, typer.Option(help="Producer control server's certificate.")
    ] = None,
    consumer_cert: Annotated[
        Path | None, typer.Option(help="Consumer control server's certificate.")
    ] = None,
    insecure: Insecure = False,
) -> None:
    """Set up both sides of a stream and print where the consumer connects."""
    from strato.stream import client

    started = time.perf_counter()
    conn = _run(
        client.connect(
            client.Gateway(producer_gateway, producer_cert, insecure),
            client.Gateway(consumer_gateway, consumer_cert, insecure),
            _list(producer_targets),
            token,
            num_conn,
            rate,
            uid,
        )
    )
    took = (time.perf_counter() - started) * 1000
    typer.echo(f"uid: {conn.uid}")
    typer.echo(f"leg: {conn.leg}")
    for listener in conn.listeners:
        typer.echo(f'listeners: "{listener}"')
    typer.echo(f"set up in {took:.0f} ms", err=True)
