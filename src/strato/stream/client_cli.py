"""`strato stream inbound-request|outbound-request|release|hello|update|connect`: SciStream's
user client (s2uc) and application controller (appctrl) with their options and what they
print, ``update`` to finish a side whose TLS leg waits for the peer gateway, and
``connect``, which sets up both gateways of a stream in one command.

Every failure is one line on stderr (``error: ...``) and a nonzero exit: 1 when a control
server refused or could not be reached, 2 for what was typed wrong."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer

if TYPE_CHECKING:
    from strato.stream.client import Gateway, Half

T = TypeVar("T")
# The uid SciStream's client uses with --mock True (its application controller mock
# answers for this uid).
MOCK_UID = "4f8583bc-a4d3-11ee-9fd6-034d1fcbd7c3"
# Where SciStream's client looks for the control server's certificate when none is given.
DEFAULT_SERVER_CERT = Path("server.crt")

Token = Annotated[
    str,
    typer.Option(
        "--token",
        envvar="STRATO_TOKEN",
        show_default=False,
        help="A strato API token with scope stream (or one the gateway introspects).",
    ),
]
ServerCert = Annotated[
    Path | None,
    typer.Option(
        "--server_cert",
        "--server-cert",
        envvar="STRATO_STREAM_SERVER_CERT",
        help="The control server's certificate (PEM), pinned; default ./server.crt if there.",
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
Mock = Annotated[
    str,
    typer.Option(
        "--mock", help=f"SciStream's: True uses the fixed uid {MOCK_UID} (its appctrl mock's)."
    ),
]
Hello = Annotated[
    bool,
    typer.Option(
        "--hello/--no-hello",
        help="Send the application's hello from here; --no-hello waits for `strato stream "
        "hello` (the application controller).",
    ),
]
Uid = Annotated[str | None, typer.Option("--uid", help="The session's uid (default: new).")]
LegCert = Annotated[
    Path | None,
    typer.Option(
        "--leg-cert",
        help="With TLS legs: where to write this gateway's session certificate "
        "(default ./UID.<role>-leg.pem).",
    ),
]
PeerLegCert = Annotated[
    Path | None,
    typer.Option(
        "--peer-leg-cert",
        help="With TLS legs: the other gateway's session certificate (its --leg-cert file).",
    ),
]


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _run(coro: Awaitable[T]) -> T:
    from strato.stream.client import StreamClientError

    async def main() -> T:
        return await coro

    try:
        return asyncio.run(main())
    except StreamClientError as exc:
        _fail(str(exc), 1)


def _client() -> None:
    # gRPC's core logs a failed TLS handshake on stderr at INFO, besides the error the
    # call raises; the one-line message is ours. Read when grpc is first imported.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def _list(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _flag(value: str, option: str) -> bool:
    """SciStream passes booleans as values (``--mock True``)."""
    text = value.strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    _fail(f"{option} {value!r}: expected True or False")


def _app_listeners(remote_ip: str, receiver_ports: str) -> list[str]:
    ports = _list(receiver_ports)
    if not ports or not all(p.isdigit() and 1 <= int(p) <= 65535 for p in ports):
        _fail(f"--receiver_ports {receiver_ports!r}: ports from 1 to 65535, comma-separated")
    host = f"[{remote_ip}]" if ":" in remote_ip and not remote_ip.startswith("[") else remote_ip
    return [f"{host}:{p}" for p in ports]


def _gateway(address: str, server_cert: Path | None, insecure: bool) -> Gateway:
    from strato.stream.client import Gateway, StreamClientError, check_address

    try:
        check_address(address, "--s2cs")
    except StreamClientError as exc:
        _fail(str(exc))
    if server_cert is None and not insecure and DEFAULT_SERVER_CERT.is_file():
        server_cert = DEFAULT_SERVER_CERT  # as SciStream's client does
    if server_cert is None and not insecure:
        _fail(
            f"{address}: give the control server's certificate (--server_cert FILE, what "
            "strato stream cert wrote on the gateway) or --insecure for one without TLS"
        )
    return Gateway(address, server_cert, insecure)


def _token(token: str) -> str:
    if not token.strip():
        _fail(
            "no token: give --token or set STRATO_TOKEN (a strato API token with scope "
            "stream: strato token create --scope stream)"
        )
    return token.strip()


def _peer_cert(path: Path | None) -> bytes:
    from strato.stream.client import StreamClientError, read_certificate

    if path is None:
        return b""
    try:
        return read_certificate(path, "--peer-leg-cert")
    except StreamClientError as exc:
        _fail(str(exc))


def _text(message: object) -> str:
    from google.protobuf import text_format

    return text_format.MessageToString(message).rstrip()  # type: ignore[arg-type]


def register_client(app: typer.Typer) -> None:
    app.command("inbound-request")(inbound_request)
    app.command("outbound-request")(outbound_request)
    # SciStream's older documentation spells them with underscores.
    app.command("inbound_request", hidden=True)(inbound_request)
    app.command("outbound_request", hidden=True)(outbound_request)
    app.command("release")(release)
    app.command("hello")(hello)
    app.command("update")(update)
    app.command("connect")(connect)


def _show_half(half: Half, role: str, leg_cert: Path | None, s2cs: str) -> None:
    """What SciStream's client prints for a side (the reply as protobuf text, then the
    listeners as a list), and where a TLS leg's certificate went."""
    from strato.stream.proto import scistream_pb2 as pb

    typer.echo(_text(pb.Response(listeners=half.listeners, prod_listeners=half.prod_listeners)))
    typer.echo("")
    typer.echo(f"Listeners: {half.listeners}")
    if half.leg != "tls":
        return
    path = leg_cert or Path(f"{half.uid}.{'producer' if role == 'PROD' else 'consumer'}-leg.pem")
    try:
        path.write_bytes(half.leg_cert)
    except OSError as e:
        _fail(f"--leg-cert {path}: {e.strerror or e}", 1)
    typer.echo("leg: tls")
    typer.echo(f"leg certificate: {path}")
    if not half.targets:
        typer.echo(
            "this side forwards once the consumer's gateway is set up: run outbound-request "
            f"with --peer-leg-cert {path}, then strato stream update {half.uid} --s2cs {s2cs} "
            "--peer-leg-cert <the consumer's leg certificate>",
            err=True,
        )


def _request_side(
    role: str,
    s2cs: str,
    uid: str,
    app_listeners: list[str],
    producer_listeners: list[str],
    num_conn: int,
    rate: int,
    send_hello: bool,
    token: str,
    server_cert: Path | None,
    insecure: bool,
    leg_cert: Path | None,
    peer_leg_cert: Path | None,
) -> None:
    _client()
    from strato.stream import client

    token = _token(token)
    gateway = _gateway(s2cs, server_cert, insecure)
    peer = _peer_cert(peer_leg_cert)
    typer.echo("uid; s2cs; access_token; role")
    typer.echo(f"{uid} {s2cs} *** {role}")  # SciStream prints the token; never ours
    if role == "PROD":
        work = client.inbound_request(
            gateway,
            token,
            uid,
            app_listeners,
            num_conn,
            rate,
            hello=send_hello,
            peer_leg_cert=peer,
            progress=typer.echo,
        )
    else:
        work = client.outbound_request(
            gateway,
            token,
            uid,
            producer_listeners,
            app_listeners,
            num_conn,
            rate,
            hello=send_hello,
            peer_leg_cert=peer,
            progress=typer.echo,
        )
    _show_half(_run(work), role, leg_cert, s2cs)


def inbound_request(
    s2cs: Annotated[str, typer.Option("--s2cs", help="The producer gateway's control server.")] = (
        "localhost:5000"
    ),
    remote_ip: RemoteIp = "localhost",
    receiver_ports: ReceiverPorts = "5074,5075,5076,37000,47000",
    num_conn: NumConn = 5,
    rate: Rate = 10000,
    mock: Mock = "False",
    send_hello: Hello = True,
    uid: Uid = None,
    token: Token = "",
    server_cert: ServerCert = None,
    insecure: Insecure = False,
    leg_cert: LegCert = None,
    peer_leg_cert: PeerLegCert = None,
) -> None:
    """The producer's side (SciStream's inbound-request): a session on the producer's
    gateway forwarding to REMOTE_IP:RECEIVER_PORTS; prints its uid and listeners."""
    from strato.stream.client import new_uid

    chosen = uid or (MOCK_UID if _flag(mock, "--mock") else new_uid())
    _request_side(
        "PROD",
        s2cs,
        chosen,
        _app_listeners(remote_ip, receiver_ports),
        [],
        num_conn,
        rate,
        send_hello,
        token,
        server_cert,
        insecure,
        leg_cert,
        peer_leg_cert,
    )


def outbound_request(
    uid: Annotated[str, typer.Argument(help="The uid inbound-request printed.")],
    prod_listeners: Annotated[
        str, typer.Argument(help="The producer gateway's listeners, comma-separated.")
    ],
    s2cs: Annotated[str, typer.Option("--s2cs", help="The consumer gateway's control server.")] = (
        "localhost:6000"
    ),
    remote_ip: RemoteIp = "localhost",
    receiver_ports: ReceiverPorts = "5074,5075,5076,37000,47000",
    num_conn: NumConn = 5,
    rate: Rate = 10000,
    send_hello: Hello = True,
    token: Token = "",
    server_cert: ServerCert = None,
    insecure: Insecure = False,
    leg_cert: LegCert = None,
    peer_leg_cert: PeerLegCert = None,
) -> None:
    """The consumer's side (SciStream's outbound-request): a session on the consumer's
    gateway forwarding to the producer gateway's PROD_LISTENERS."""
    from strato.stream.client import StreamClientError, check_address

    targets = _list(prod_listeners)
    try:
        for target in targets or [prod_listeners]:
            check_address(target, "PROD_LISTENERS")
    except StreamClientError as exc:
        _fail(str(exc))
    _request_side(
        "CONS",
        s2cs,
        uid,
        _app_listeners(remote_ip, receiver_ports),
        targets,
        num_conn,
        rate,
        send_hello,
        token,
        server_cert,
        insecure,
        leg_cert,
        peer_leg_cert,
    )


def _paired(s2cs: Sequence[str], certs: Sequence[Path], insecure: bool) -> list[Gateway]:
    """Each --s2cs with its --server_cert: one for all, or one each in order."""
    if len(certs) > 1 and len(certs) != len(s2cs):
        _fail(f"{len(certs)} --server_cert for {len(s2cs)} --s2cs: give one, or one per --s2cs")
    return [
        _gateway(a, certs[i] if len(certs) > 1 else (certs[0] if certs else None), insecure)
        for i, a in enumerate(s2cs)
    ]


def release(
    uid: Annotated[str, typer.Argument(help="The session's uid.")],
    s2cs: Annotated[
        list[str], typer.Option("--s2cs", help="A control server (repeat for both sides).")
    ] = ["localhost:5000"],  # noqa: B006 - typer's list default
    server_cert: Annotated[
        list[Path],
        typer.Option(
            "--server_cert",
            "--server-cert",
            envvar="STRATO_STREAM_SERVER_CERT",
            help="The control server's certificate; repeat, one per --s2cs in order.",
        ),
    ] = [],  # noqa: B006 - typer's list default
    token: Token = "",
    insecure: Insecure = False,
) -> None:
    """Release session UID on each gateway (idempotent); prints `Release completed` for
    each."""
    _client()
    from strato.stream.client import Control, StreamClientError

    token = _token(token)
    gateways = _paired(s2cs, server_cert, insecure)

    async def go() -> list[str]:
        failed = []
        for gateway in gateways:  # every gateway is tried, whatever one said
            try:
                async with Control(gateway, token) as c:
                    await c.release(uid)
                typer.echo("Release completed")
            except StreamClientError as exc:
                failed.append(str(exc))
        return failed

    failed = _run(go())
    if failed:
        _fail("; ".join(failed), 1)


def hello(
    uid: Annotated[str, typer.Argument(help="The session's uid.")],
    s2cs: Annotated[str, typer.Option("--s2cs", help="The gateway's control server.")] = (
        "localhost:5000"
    ),
    role: Annotated[str, typer.Option(help="PROD or CONS.")] = "PROD",
    prod_listeners: Annotated[
        str, typer.Option("--prod_listeners", "--prod-listeners", help="ip:port, comma-separated.")
    ] = "",
    token: Token = "",
    server_cert: ServerCert = None,
    insecure: Insecure = False,
) -> None:
    """The application controller's hello (SciStream's appctrl): tell the gateway where
    the application listens; prints the session's listeners."""
    _client()
    from strato.stream.client import Control

    token = _token(token)
    gateway = _gateway(s2cs, server_cert, insecure)

    async def go() -> None:
        async with Control(gateway, token) as c:
            reply = await c.hello(uid, role.upper(), _list(prod_listeners))
            typer.echo(reply.message)
            typer.echo(_text(reply))

    _run(go())


def update(
    uid: Annotated[str, typer.Argument(help="The session's uid.")],
    s2cs: Annotated[str, typer.Option("--s2cs", help="The gateway's control server.")] = (
        "localhost:5000"
    ),
    remote_listeners: Annotated[
        str,
        typer.Option(
            "--remote_listeners",
            "--remote-listeners",
            help="Targets, ip:port comma-separated (default: what the session's hello sent).",
        ),
    ] = "",
    peer_leg_cert: PeerLegCert = None,
    token: Token = "",
    server_cert: ServerCert = None,
    insecure: Insecure = False,
) -> None:
    """Point session UID's listeners at new targets; with --peer-leg-cert, finish the
    producer's side of a stream whose gateways have TLS legs."""
    _client()
    from strato.stream import client

    token = _token(token)
    gateway = _gateway(s2cs, server_cert, insecure)
    peer = _peer_cert(peer_leg_cert)
    reply = _run(client.complete(gateway, token, uid, peer, _list(remote_listeners)))
    typer.echo(_text(reply))
    typer.echo("Update completed")


def connect(
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
    uid: Uid = None,
    token: Token = "",
    producer_cert: Annotated[
        Path | None, typer.Option(help="Producer control server's certificate.")
    ] = None,
    consumer_cert: Annotated[
        Path | None, typer.Option(help="Consumer control server's certificate.")
    ] = None,
    insecure: Insecure = False,
) -> None:
    """Set up both sides of a stream and print where the consumer connects."""
    _client()
    from strato.stream import client

    token = _token(token)
    producer = _gateway(producer_gateway, producer_cert, insecure)
    consumer = _gateway(consumer_gateway, consumer_cert, insecure)
    targets = _list(producer_targets)
    try:
        for target in targets or [producer_targets]:
            client.check_address(target, "--producer-targets")
    except client.StreamClientError as exc:
        _fail(str(exc))
    started = time.perf_counter()
    conn = _run(client.connect(producer, consumer, targets, token, num_conn, rate, uid))
    took = (time.perf_counter() - started) * 1000
    typer.echo(f"uid: {conn.uid}")
    typer.echo(f"leg: {conn.leg}")
    for listener in conn.listeners:
        typer.echo(f'listeners: "{listener}"')
    typer.echo(f"set up in {took:.0f} ms", err=True)
