"""What happens once a run's tasks are done: the project directory archived as a
``.tar.gz`` and the submitter told by e-mail. Both block (files, SMTP) and are called in
a thread by the runner."""

from __future__ import annotations

import os
import smtplib
import tarfile
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlsplit

from strato.errors import InvalidInput
from strato.pipelines.records import RunRecord


def archive(project: Path, destination: Path, run_id: str) -> Path:
    """``<destination>/<project name>-<run id>.tar.gz``, the project directory under its
    own name inside. A tar.gz, not a copy: one file to move or delete, and a partial one
    (``.part``) is never taken for a finished archive."""
    destination.mkdir(parents=True, exist_ok=True)
    target = destination / f"{project.name}-{run_id}.tar.gz"
    partial = target.with_name(target.name + ".part")
    with tarfile.open(partial, "w:gz") as tar:
        tar.add(project, arcname=project.name)
    os.replace(partial, target)
    return target


def notify(smtp_url: str, sender: str, to: tuple[str, ...], run: RunRecord, text: str) -> None:
    """One message to ``to`` saying how ``run`` ended; ``smtp_url``: smtp://[user:password@]
    host[:port] or smtps://..."""
    url = urlsplit(smtp_url)
    if url.scheme not in ("smtp", "smtps") or not url.hostname:
        raise InvalidInput(f"pipelines.smtp_url is no smtp:// or smtps:// URL: {url.scheme!r}")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = f"strato: run {run.id} of {run.pipeline} {run.state.value}"
    message.set_content(text)
    smtp_class = smtplib.SMTP_SSL if url.scheme == "smtps" else smtplib.SMTP
    default_port = 465 if url.scheme == "smtps" else 25
    with smtp_class(url.hostname, url.port or default_port, timeout=30) as smtp:
        if url.username:
            smtp.login(unquote(url.username), unquote(url.password or ""))
        smtp.send_message(message)


def summary(run: RunRecord, archived: str | None) -> str:
    lines = [
        f"Run {run.id} of {run.pipeline} {run.state.value}.",
        f"Project directory: {run.project}",
    ]
    if archived:
        lines.append(f"Archived to: {archived}")
    if run.reason:
        lines += ["", run.reason]
    return "\n".join(lines) + "\n"


def tail(log: str | None, limit: int = 2000) -> str:
    """The last ``limit`` bytes of a task's log, as text, from a line's start."""
    if not log:
        return ""
    try:
        with open(log, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - limit))
            data = f.read()
    except OSError:
        return ""
    if size > limit and b"\n" in data:
        data = data.split(b"\n", 1)[1]
    return data.decode("utf-8", errors="replace")
