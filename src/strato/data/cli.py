"""`strato data`: register, list and remove served datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from strato.data.datasets.registry import parse_chunks

data_app = typer.Typer(help="Register, list and remove served datasets.", no_args_is_help=True)


def _service(ctx: typer.Context) -> object:
    from strato.cli import state
    from strato.context import Context
    from strato.data.service import DataService

    c = Context.open(state(ctx).settings())
    c.migrate()
    return DataService(c.sessions, c.settings)


def _absolute(source: str) -> str:
    # The shell hands us relative paths and globs; registrations store absolute ones.
    return source if Path(source).is_absolute() else str(Path.cwd() / source)


@data_app.command("add")
def add(
    ctx: typer.Context,
    sources: Annotated[
        list[str], typer.Argument(help="Files, globs or Zarr stores (quote globs).")
    ],
    dataset_id: Annotated[str, typer.Option("--id", help="Dataset id used in URLs.")],
    title: Annotated[str | None, typer.Option(help="Human title.")] = None,
    chunks: Annotated[str | None, typer.Option(help="Chunk sizes served, e.g. time=100.")] = None,
    concat_dim: Annotated[str, typer.Option(help="Dimension that joins several files.")] = "time",
    replace: Annotated[bool, typer.Option(help="Replace an existing registration.")] = False,
) -> None:
    """Register NetCDF/HDF5 files, a glob of them, a Zarr store or a kerchunk reference file."""
    from strato.data.service import DataService

    service = _service(ctx)
    assert isinstance(service, DataService)
    opened = service.register(
        dataset_id,
        [_absolute(s) for s in sources],
        title=title,
        chunks=parse_chunks(chunks),
        concat_dim=concat_dim,
        replace=replace,
    )
    names = ", ".join(str(v) for v in opened.decoded.data_vars)
    typer.echo(f"registered {opened.id}: {len(opened.files)} file(s), variables {names}")


@data_app.command("list")
def list_(ctx: typer.Context) -> None:
    """List registered datasets with their state."""
    from strato.data.service import DataService

    service = _service(ctx)
    assert isinstance(service, DataService)
    typer.echo(f"{'ID':32} {'STATE':8} {'FILES':>5}  TITLE / REASON")
    for s in service.statuses():
        detail = s.title if s.state == "ok" else s.reason
        typer.echo(f"{s.id:32} {s.state:8} {s.files:>5}  {detail}")


@data_app.command("remove")
def remove(
    ctx: typer.Context, dataset_id: Annotated[str, typer.Argument(help="Dataset id.")]
) -> None:
    """Stop serving a dataset; its files are left alone."""
    from strato.data.service import DataService

    service = _service(ctx)
    assert isinstance(service, DataService)
    service.remove(dataset_id)
    typer.echo(f"removed {dataset_id}")


@data_app.command("demo")
def demo(
    ctx: typer.Context,
    small: Annotated[
        bool, typer.Option(help="A small, coarse collection (for trying things).")
    ] = False,
) -> None:
    """Generate the CMIP6-like demo collection and register it."""
    from strato.data.demo.ensure import ensure_demo
    from strato.data.service import DataService

    service = _service(ctx)
    assert isinstance(service, DataService)
    added = ensure_demo(service, scale="small" if small else "full")
    typer.echo(f"demo datasets registered: {', '.join(added) if added else 'all already there'}")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
