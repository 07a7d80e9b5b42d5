"""First-start set-up: the administrator and its token file."""

from __future__ import annotations

import os
from pathlib import Path

from strato.auth import ALL_SCOPES, IdentityStore, IssuedToken, Scope
from strato.settings import Settings

TOKEN_FILE = "admin-token"  # noqa: S105  (a file name)


def admin_token_path(settings: Settings) -> Path:
    return settings.data_dir / TOKEN_FILE


def ensure_admin(identities: IdentityStore, settings: Settings) -> IssuedToken | None:
    """Create the admin user and a token on first start; None when it already exists."""
    name = settings.auth.admin_user
    if identities.user_exists(name):
        return None
    identities.create_user(name, scopes=ALL_SCOPES)
    issued = identities.create_token(name, {Scope.ADMIN}, name="created by strato up")
    write_secret(admin_token_path(settings), issued.secret)
    return issued


def write_secret(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    # Created 0600 from the start, so there is no moment where others could read it.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    tmp.replace(path)
