"""`strato process ...`: the processes this node offers (more commands to come)."""

from __future__ import annotations

import json

import typer

process_app = typer.Typer(
    help="Processes (OGC API - Processes) and their jobs.", no_args_is_help=True
)


@process_app.command("list")
def list_processes() -> None:
    """The processes installed here, one per line: id and title."""
    from strato.processes.registry import Registry

    for registered in Registry.from_entry_points().all():
        typer.echo(f"{registered.id}\t{registered.description.title}")


@process_app.command("describe")
def describe(process_id: str) -> None:
    """A process's description (OGC API - Processes JSON)."""
    from strato.processes.registry import Registry

    described = Registry.from_entry_points().get(process_id).description.to_json()
    typer.echo(json.dumps(described, indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(process_app, name="process")
