"""`strato pipelines submit|runs|status|logs|cancel|resume`: runs on a node, through its
runs API (``--url``/``STRATO_URL``; ``--token``/``STRATO_TOKEN``, with ``--user``/
``STRATO_USER`` as HTTP Basic), so that the command line sees what any client sees and
runs go where the server runs them. Added to the group of `strato.pipelines.cli`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from strato.pipelines.cli import _config_file, _config_values, pipelines_app

Url = Annotated[str, typer.Option("--url", envvar="STRATO_URL", help="The node's base URL.")]
Token = Annotated[
    str | None,
    typer.Option(
        "--token", envvar="STRATO_TOKEN", help="An API token (or, with --user, a password)."
    ),
]
User = Annotated[
    str | None,
    typer.Option("--user", envvar="STRATO_USER", help="User name: HTTP Basic with --token."),
]
API = "/api/v1"
DEFAULT_URL = "http://127.0.0.1:8000"
ENDED = ("succeeded", "failed", "cancelled")
TASK_DONE = ("complete", "failed", "skipped", "cancelled")


def _call(
    method: str, url: str, user: str | None, token: str | None, path: str, **kwargs: Any
) -> Any:
    import httpx

    auth: Any = None
    headers: dict[str, str] = {}
    if user is not None:
        auth = (user, token or "")
    elif token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        answer = httpx.request(
            method,
            url.rstrip("/") + API + path,
            headers=headers,
            auth=auth,
            timeout=120,
            **kwargs,
        )
    except httpx.HTTPError as exc:
        typer.echo(f"error: {url} cannot be reached: {type(exc).__name__}", err=True)
        raise typer.Exit(1) from None
    if answer.status_code >= 400:
        try:
            detail = answer.json().get("detail", answer.text)
        except ValueError:
            detail = answer.text
        typer.echo(f"error: {answer.status_code} {detail}", err=True)
        raise typer.Exit(1)
    return answer


@pipelines_app.command(
    "submit",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def submit(
    ctx: typer.Context,
    pipeline: Annotated[str, typer.Argument(help="name@version")],
    config_file: Annotated[
        Path | None, typer.Option("--config-file", "-C", help="Config (JSON or YAML mapping).")
    ] = None,
    follow: Annotated[bool, typer.Option(help="Follow the run to its end.")] = False,
    url: Url = DEFAULT_URL,
    user: User = None,
    token: Token = None,
) -> None:
    """Submit a run of PIPELINE to the node and print its id; with --follow a progress
    bar of its tasks until it ends (exit 1 unless it succeeded).

    Values: -C FILE, then -c [TYPE:]KEY VALUE (repeatable), which override the file's."""
    config = _config_file(config_file) if config_file else {}
    config.update(_config_values(ctx.args))
    config["pipeline"] = pipeline
    run = _call("POST", url, user, token, "/new-run/", json=config).json()
    typer.echo(run["id"])
    if follow:
        _follow(url, user, token, run["id"])


def _follow(url: str, user: str | None, token: str | None, run_id: str) -> None:
    from tqdm import tqdm

    tasks = _call("GET", url, user, token, f"/runs/{run_id}/tasks").json()["tasks"]
    with tqdm(total=len(tasks), desc=run_id[:12], unit="task", leave=False) as bar:
        while True:
            run = _call("GET", url, user, token, f"/runs/{run_id}").json()
            tasks = _call("GET", url, user, token, f"/runs/{run_id}/tasks").json()["tasks"]
            done = sum(t["state"] in TASK_DONE for t in tasks)
            bar.update(done - bar.n)
            running = [t["name"] for t in tasks if t["state"] == "running"]
            bar.set_postfix_str(", ".join(running)[:60])
            if run["state"] in ENDED:
                break
            time.sleep(0.5)
    typer.echo(f"{run_id} {run['state']}")
    if run["state"] != "succeeded":
        if run["reason"]:
            typer.echo(run["reason"], err=True)
        raise typer.Exit(1)


@pipelines_app.command("runs")
def runs(
    state: Annotated[list[str] | None, typer.Option(help="Only runs in this state.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    url: Url = DEFAULT_URL,
    user: User = None,
    token: Token = None,
) -> None:
    """Your runs on the node, newest first: id, state, pipeline, project, created."""
    params: dict[str, Any] = {"limit": limit}
    if state:
        params["state"] = state
    for r in _call("GET", url, user, token, "/runs", params=params).json()["runs"]:
        typer.echo(
            f"{r['id']}  {r['state']:<10} {r['pipeline']:<24} {r['project'] or '-'}  {r['created']}"
        )


@pipelines_app.command("status")
def status(
    run_id: str,
    tasks: Annotated[bool, typer.Option("--tasks", help="With each task's state.")] = False,
    follow: Annotated[bool, typer.Option(help="Follow the run to its end.")] = False,
    url: Url = DEFAULT_URL,
    user: User = None,
    token: Token = None,
) -> None:
    """A run's record as JSON; with --tasks its tasks' states; with --follow a progress bar."""
    if follow:
        _follow(url, user, token, run_id)
        return
    run = _call("GET", url, user, token, f"/runs/{run_id}").json()
    if tasks:
        listed = _call("GET", url, user, token, f"/runs/{run_id}/tasks").json()["tasks"]
        run["tasks"] = {t["name"]: t["state"] for t in listed}
    typer.echo(json.dumps(run, indent=2))


@pipelines_app.command("logs")
def logs(
    run_id: str,
    task: str,
    tail: Annotated[int, typer.Option(min=1, help="At most this many bytes.")] = 64 * 1024,
    url: Url = DEFAULT_URL,
    user: User = None,
    token: Token = None,
) -> None:
    """The end of a task's log (its latest attempt)."""
    text = _call("GET", url, user, token, f"/runs/{run_id}/tasks/{task}/log", params={"tail": tail})
    typer.echo(text.text, nl=False)


@pipelines_app.command("cancel")
def cancel(run_id: str, url: Url = DEFAULT_URL, user: User = None, token: Token = None) -> None:
    """Cancel a run: its running tasks are stopped."""
    run = _call("POST", url, user, token, f"/runs/{run_id}/cancel").json()
    typer.echo(f"{run_id} {run['state']}")


@pipelines_app.command("resume")
def resume(
    run_id: str,
    retry: Annotated[
        bool, typer.Option("--retry", help="Only run the failed tasks again, not re-rendered.")
    ] = False,
    follow: Annotated[bool, typer.Option(help="Follow the run to its end.")] = False,
    url: Url = DEFAULT_URL,
    user: User = None,
    token: Token = None,
) -> None:
    """Run an ended run again: re-rendered, keeping its unchanged completed tasks (with
    --retry: its failed, skipped and cancelled tasks run again as they were)."""
    action = "retry" if retry else "resume"
    run = _call("POST", url, user, token, f"/runs/{run_id}/{action}").json()
    typer.echo(f"{run_id} {run['state']}")
    if follow:
        _follow(url, user, token, run_id)


def register(app: typer.Typer) -> None:
    import strato.pipelines.worker_cli  # noqa: F401  (adds `strato pipelines worker`)
    from strato.pipelines.cli import register as register_local

    register_local(app)
