"""`strato process ...`: the processes of a running node and your jobs there, through its
OGC API - Processes (``--url``/``STRATO_URL``, ``--token``/``STRATO_TOKEN``), so that
the command line sees what any client sees and runs jobs where the workers are."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

process_app = typer.Typer(
    help="Processes (OGC API - Processes) of a node and your jobs there.", no_args_is_help=True
)

Url = Annotated[str, typer.Option("--url", envvar="STRATO_URL", help="The node's base URL.")]
Token = Annotated[str | None, typer.Option("--token", envvar="STRATO_TOKEN", help="An API token.")]
API = "/processes-api"


def _call(method: str, url: str, token: str | None, path: str, **kwargs: Any) -> Any:
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers |= kwargs.pop("headers", {})
    try:
        answer = httpx.request(
            method, url.rstrip("/") + API + path, headers=headers, timeout=120, **kwargs
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


def _show(value: Any) -> None:
    typer.echo(value if isinstance(value, str) else json.dumps(value, indent=2))


@process_app.command("list")
def list_processes(url: Url = "http://127.0.0.1:8000", token: Token = None) -> None:
    """The processes offered: id, title."""
    for p in _call("GET", url, token, "/processes").json()["processes"]:
        typer.echo(f"{p['id']}\t{p['title']}")


@process_app.command("describe")
def describe(process_id: str, url: Url = "http://127.0.0.1:8000", token: Token = None) -> None:
    """A process's description (JSON)."""
    _show(_call("GET", url, token, f"/processes/{process_id}").json())


@process_app.command("execute")
def execute(
    process_id: str,
    inputs: Annotated[
        list[str] | None,
        typer.Option("--input", "-i", help="NAME=VALUE; VALUE is read as JSON, else text."),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow the job to its end.")] = True,
    url: Url = "http://127.0.0.1:8000",
    token: Token = None,
) -> None:
    """Run a process as a job; with --wait (the default) a progress bar, then its results."""
    given: dict[str, Any] = {}
    for item in inputs or []:
        name, sep, text = item.partition("=")
        if not sep:
            typer.echo(f"error: --input {item!r} is not NAME=VALUE", err=True)
            raise typer.Exit(2)
        try:
            given[name] = json.loads(text)
        except ValueError:
            given[name] = text
    answer = _call(
        "POST",
        url,
        token,
        f"/processes/{process_id}/execution",
        json={"inputs": given, "response": "document"},
        headers={"Prefer": "respond-async"},
    )
    status = answer.json()
    if answer.status_code == 200:
        _show(status)
        return
    job_id = status["jobID"]
    if not wait:
        typer.echo(job_id)
        return
    _follow(url, token, job_id)
    _show(_call("GET", url, token, f"/jobs/{job_id}/results").json())


def _follow(url: str, token: str | None, job_id: str) -> None:
    import time

    from tqdm import tqdm

    with tqdm(total=100, desc=job_id, unit="%", leave=False) as bar:
        while True:
            status = _call("GET", url, token, f"/jobs/{job_id}").json()
            bar.update(status.get("progress", 0) - bar.n)
            bar.set_postfix_str(status.get("message", ""))
            if status["status"] not in ("accepted", "running"):
                break
            time.sleep(0.2)
    if status["status"] != "successful":
        typer.echo(f"error: job {job_id} {status['status']}: {status.get('message')}", err=True)
        raise typer.Exit(1)


@process_app.command("jobs")
def jobs(
    process: Annotated[str | None, typer.Option(help="Only jobs of this process.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    url: Url = "http://127.0.0.1:8000",
    token: Token = None,
) -> None:
    """Your jobs, newest first: id, status, progress, process."""
    params: dict[str, Any] = {"limit": limit}
    if process:
        params["processID"] = process
    for job in _call("GET", url, token, "/jobs", params=params).json()["jobs"]:
        typer.echo(f"{job['jobID']}  {job['status']:<10} {job['progress']:>3}%  {job['processID']}")


@process_app.command("result")
def result(job_id: str, url: Url = "http://127.0.0.1:8000", token: Token = None) -> None:
    """A finished job's results (JSON)."""
    _show(_call("GET", url, token, f"/jobs/{job_id}/results").json())


@process_app.command("dismiss")
def dismiss(job_id: str, url: Url = "http://127.0.0.1:8000", token: Token = None) -> None:
    """Cancel a job if it runs, and remove it."""
    status = _call("DELETE", url, token, f"/jobs/{job_id}").json()
    typer.echo(f"{job_id} {status['status']}")


def register(app: typer.Typer) -> None:
    from strato.processes.endpoint_cli import endpoint_app

    app.add_typer(process_app, name="process")
    app.add_typer(endpoint_app, name="endpoint")
