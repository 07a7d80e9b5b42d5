"""The strato command line."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pydantic
import sqlalchemy.exc
import typer

from strato import __version__
from strato.capabilities import load_capabilities, loadable_capabilities
from strato.errors import Conflict, Forbidden, InvalidInput, NotFound, StratoError, Unavailable
from strato.redact import mask_secrets
from strato.settings import CONFIG_ENV, Settings, load_settings

app = typer.Typer(
    name="strato",
    help=(
        "strato: datasets served as Zarr, a federated STAC catalog, a job engine and "
        "analytic processes for data centres."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Manage the database schema.", no_args_is_help=True)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
token_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(config_app, name="config")

EXIT_CODES: dict[type[StratoError], int] = {
    InvalidInput: 2,
    NotFound: 3,
    Conflict: 4,
    Forbidden: 5,
    Unavailable: 6,
}


@dataclass
class CliState:
    config: Path | None
    overrides: dict[str, Any]

    def settings(self, **more: Any) -> Settings:
        return load_settings(self.config, **{**self.overrides, **more})


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliState)
    return obj


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", envvar="STRATO_CONFIG", help="TOML configuration file."),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Data directory (overrides settings).")
    ] = None,
) -> None:
    """strato: datasets served as Zarr, a federated STAC catalog, a job engine and analytic
    processes (OGC API - Processes) for science data centres."""
    overrides = {"data_dir": data_dir} if data_dir is not None else {}
    ctx.obj = CliState(config=config, overrides=overrides)


@app.command()
def version() -> None:
    """Print the strato version."""
    typer.echo(__version__)


@config_app.command("show")
def config_show(ctx: typer.Context) -> None:
    """Print the effective configuration as JSON, secrets masked."""
    typer.echo(json.dumps(state(ctx).settings().public_dump(), indent=2))


# Imported here, not at the top, so `strato --help` and `strato version` stay fast.
def _context(ctx: typer.Context, **more: Any) -> Any:
    from strato.context import Context

    return Context.open(state(ctx).settings(**more))


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply the migrations of the core and of every capability switched on."""
    c = _context(ctx)
    c.migrate()
    typer.echo(f"database at revision {c.schema()}")


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Print the database's schema revisions (one per history) and the newest ones."""
    c = _context(ctx)
    typer.echo(f"current: {c.schema() or 'empty'}")
    typer.echo(f"head:    {c.schema_head()}")


def _read_password(password: str | None, password_stdin: bool) -> str | None:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return password


@user_app.command("create")
def user_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name.")],
    scope: Annotated[
        str, typer.Option("--scope", "-s", help="Comma-separated scopes the user may hold.")
    ] = "read",
    password: Annotated[
        str | None, typer.Option(help="Password (prefer --password-stdin).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a user; without a password it signs in with tokens only."""
    from strato.auth import format_scopes, parse_scopes

    c = _context(ctx)
    c.migrate()
    info = c.identities.create_user(
        name, password=_read_password(password, password_stdin), scopes=parse_scopes(scope)
    )
    typer.echo(f"created user {info.name} with scopes {format_scopes(info.scopes)}")


@user_app.command("list")
def user_list(ctx: typer.Context) -> None:
    """List users."""
    from strato.auth import format_scopes

    for u in _context(ctx).identities.list_users():
        state_ = "active" if u.is_active else "disabled"
        typer.echo(f"{u.name:24} {state_:9} {format_scopes(u.scopes)}")


@user_app.command("passwd")
def user_passwd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Set a user's password."""
    password = (
        _read_password(None, True)
        if password_stdin
        else typer.prompt("password", hide_input=True, confirmation_prompt=True)
    )
    assert password is not None
    _context(ctx).identities.set_password(name, password)
    typer.echo(f"password of {name} changed")


@user_app.command("disable")
def user_disable(ctx: typer.Context, name: str) -> None:
    """Disable a user: its password and tokens stop working."""
    _context(ctx).identities.set_active(name, False)
    typer.echo(f"user {name} disabled")


@user_app.command("enable")
def user_enable(ctx: typer.Context, name: str) -> None:
    """Enable a disabled user."""
    _context(ctx).identities.set_active(name, True)
    typer.echo(f"user {name} enabled")


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", "-u", help="Owner of the token.")],
    scope: Annotated[
        str,
        typer.Option(
            "--scope", "-s", help="Comma-separated: read,publish,run,process,stream,admin."
        ),
    ] = "read",
    expires: Annotated[str | None, typer.Option(help="Lifetime: 30d, 12h, 90m or never.")] = None,
    name: Annotated[str, typer.Option(help="A label to recognise the token by.")] = "",
) -> None:
    """Create an API token and print it once; only its hash is stored."""
    from strato.auth import parse_duration, parse_scopes

    c = _context(ctx)
    lifetime = parse_duration(expires or c.settings.auth.token_default_expiry)
    issued = c.identities.create_token(user, parse_scopes(scope), expires_in=lifetime, name=name)
    expiry = issued.info.expires_at.isoformat() if issued.info.expires_at else "never"
    typer.echo(f"token {issued.info.id} for {user}, expires {expiry}:", err=True)
    typer.echo(issued.secret)


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", "-u", help="Only this user's.")] = None,
) -> None:
    """List tokens (never their secrets)."""
    from strato.auth import format_scopes

    tokens = _context(ctx).identities.list_tokens(user)
    typer.echo(f"{'ID':12} {'USER':16} {'STATE':8} {'EXPIRES':25} {'SCOPES':28} {'PARENT':12} NAME")
    for t in tokens:
        exp = t.expires_at.isoformat() if t.expires_at else "never"
        parent = t.parent_id or "-"
        typer.echo(
            f"{t.id:12} {t.user:16} {t.state:8} {exp:25} {format_scopes(t.scopes):28} "
            f"{parent:12} {t.name}"
        )


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context, token_id: Annotated[str, typer.Argument(help="Token id.")]
) -> None:
    """Revoke a token by its id, and every token minted with it."""
    revoked = _context(ctx).identities.revoke_token(token_id)
    typer.echo(f"token {revoked.info.id} of {revoked.info.user} revoked")
    if revoked.derived:
        typer.echo(
            f"also revoked {len(revoked.derived)} token(s) it minted: {', '.join(revoked.derived)}"
        )


HostOpt = Annotated[str | None, typer.Option(help="Address to bind (overrides settings).")]
PortOpt = Annotated[int | None, typer.Option(help="Port to bind; 0 picks a free one.")]


def _serve(ctx: typer.Context, host: str | None, port: int | None, *, first_start: bool) -> None:
    from strato.app import create_app
    from strato.bootstrap import admin_token_path, ensure_admin
    from strato.capabilities import starting
    from strato.context import Context, ensure_data_dir, require_writable_data_dir
    from strato.logs import configure_logging
    from strato.server import bind, serve

    more = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = state(ctx).settings(**more)
    configure_logging(settings.log)
    sock = bind(settings.host, settings.port)
    settings = settings.model_copy(update={"port": sock.getsockname()[1]})
    # Job workers this server starts load their settings from the environment they
    # inherit: given on the command line, the data directory (its database, its datasets)
    # and the configuration file would be lost on the way.
    os.environ["STRATO_DATA_DIR"] = str(settings.data_dir.resolve())
    config = state(ctx).config
    if config is not None:
        os.environ[CONFIG_ENV] = str(config.resolve())
    if first_start:
        # `up` writes its database, token and demo data there: a directory it cannot
        # write is named now, in one line, rather than met as a driver error later.
        ensure_data_dir(settings.data_dir)
        require_writable_data_dir(settings.data_dir)
    c = Context.open(settings)
    # `strato api` serves; consuming is `strato consumer`'s role when scaled out.
    c.serve_only = not first_start
    issued = None
    if first_start:
        c.migrate()
        issued = ensure_admin(c.identities, settings)
    web = create_app(settings, context=c)
    if first_start:
        for cap in load_capabilities(settings):
            with starting(cap.name):
                cap.on_start(c)
    base = settings.base_url
    lines = [
        f"strato {__version__} on node {settings.node_name!r}",
        f"  web:       {base}/",
        f"  API docs:  {base}/docs",
        f"  health:    {base}/healthz",
        *(f"  {link.title.lower() + ':':10} {base}{link.href}" for link in web.state.nav),
        f"  data dir:  {settings.data_dir}",
    ]
    if issued is not None:
        lines.append(f"  admin token (shown once; saved in {admin_token_path(settings)}):")
        lines.append(f"    {issued.secret}")
    elif first_start:
        lines.append(f"  admin token: in {admin_token_path(settings)}")
    typer.echo("\n".join(lines), nl=True)
    sys.stdout.flush()
    try:
        serve(web, sock)
    finally:
        c.close()


@app.command()
def up(ctx: typer.Context, host: HostOpt = None, port: PortOpt = None) -> None:
    """Start the whole platform: migrations, admin, web app, demo data, catalog consumer."""
    _serve(ctx, host, port, first_start=True)


@app.command()
def api(ctx: typer.Context, host: HostOpt = None, port: PortOpt = None) -> None:
    """Start the web app alone, for scale-out behind a load balancer."""
    _serve(ctx, host, port, first_start=False)


# Every installed capability's commands, switched on or not: they are listed before any
# settings are read (a capability that cannot even be loaded has none).
for _cap in loadable_capabilities():
    _cap.register_cli(app)


def main() -> None:
    try:
        app()
    except StratoError as exc:
        typer.echo(f"error: {mask_secrets(exc.detail)}", err=True)
        code = next((v for k, v in EXIT_CODES.items() if isinstance(exc, k)), 1)
        raise SystemExit(code) from None
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        typer.echo(f"error: invalid configuration: {problems}", err=True)
        raise SystemExit(2) from None
    except sqlalchemy.exc.OperationalError as exc:
        typer.echo(f"error: database not reachable: {mask_secrets(str(exc.orig))}", err=True)
        raise SystemExit(6) from None
