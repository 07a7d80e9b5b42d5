"""`strato playground`: start and stop a three-node federation on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

playground_app = typer.Typer(
    help="A federation on this machine: a bus and three index nodes (east, west, secondary).",
    no_args_is_help=True,
)

DirOpt = Annotated[
    Path | None,
    typer.Option(
        "--dir", help="Where the playground keeps its bus and nodes; default <data dir>/playground."
    ),
]


def _directory(ctx: typer.Context, directory: Path | None) -> Path:
    from strato.cli import state

    return directory or state(ctx).settings().data_dir / "playground"


def _ports(text: str) -> list[int]:
    from strato.errors import InvalidInput

    try:
        ports = [int(p) for p in text.split(",")]
    except ValueError:
        raise InvalidInput(
            f"--ports takes three numbers separated by commas, not {text!r}"
        ) from None
    if len(ports) != 3 or not all(0 <= p <= 65535 for p in ports):
        raise InvalidInput(f"--ports takes three port numbers (0 picks a free one), not {text!r}")
    return ports


@playground_app.command("up")
def up(
    ctx: typer.Context,
    directory: DirOpt = None,
    bus: Annotated[
        str | None,
        typer.Option(
            help="Bus URL (nats://..., kafka://...); default an embedded log in the "
            "playground directory."
        ),
    ] = None,
    ports: Annotated[str, typer.Option(help="Ports of east, west and secondary.")] = (
        "8101,8102,8103"
    ),
    database_url: Annotated[
        str | None,
        typer.Option(
            help="One database per node, {node} standing for its name, created when "
            "missing (PostgreSQL, MariaDB); default SQLite files."
        ),
    ] = None,
) -> None:
    """Start the bus and the three nodes, each in its own process, and print their URLs."""
    from strato.catalog.demo import playground
    from strato.redact import mask_url

    where = _directory(ctx, directory)
    started = playground.up(where, bus_url=bus, ports=_ports(ports), database_url=database_url)
    lines = [
        f"playground in {started.directory}",
        f"  bus: {mask_url(started.bus_url)} (topics <mip_era>.<experiment_id>.<source_id>)",
    ]
    for node in started.nodes:
        what = "historical experiment only" if node.topics else "all events"
        lines.append(f"  {node.name:10} {node.url}/catalog  STAC {node.url}/stac  ({what})")
    lines.append("publish with: strato generate 1000 --publish --node east")
    lines.append("stop with:    strato playground down")
    typer.echo("\n".join(lines))


@playground_app.command("restart")
def restart(
    ctx: typer.Context,
    node: Annotated[str, typer.Argument(help="The node to restart: east, west or secondary.")],
    directory: DirOpt = None,
) -> None:
    """Stop one node and start it again (same port, data and database); the others go on."""
    from strato.catalog.demo import playground

    started = playground.restart(_directory(ctx, directory), node)
    typer.echo(f"restarted {started.name}: {started.url}/catalog  STAC {started.url}/stac")


@playground_app.command("down")
def down(ctx: typer.Context, directory: DirOpt = None) -> None:
    """Stop the playground's nodes (their data stays)."""
    from strato.catalog.demo import playground

    stopped = playground.down(_directory(ctx, directory))
    typer.echo(f"stopped {', '.join(n.name for n in stopped.nodes)}")


@playground_app.command("status")
def status(ctx: typer.Context, directory: DirOpt = None) -> None:
    """The nodes of the running playground and how many items each holds."""
    from strato.catalog.demo import playground
    from strato.errors import NotFound

    where = _directory(ctx, directory)
    found = playground.running(where)
    if found is None:
        raise NotFound(f"no playground runs in {where}")
    counts = playground.counts(found)
    for node in found.nodes:
        held = counts[node.name]
        typer.echo(f"{node.name:10} {node.url}  items: {'unreachable' if held is None else held}")


def register(app: typer.Typer) -> None:
    app.add_typer(playground_app, name="playground")
