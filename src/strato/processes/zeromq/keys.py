"""CURVE keys of the ZeroMQ transport ("ironhouse"): the server has a key pair, each
client its own; the server accepts only the client public keys in its allow-list
directory, and says in its log whom it refused."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from strato.errors import InvalidInput
from strato.extras import optional_driver

log = logging.getLogger(__name__)


def create(directory: Path, name: str) -> tuple[Path, Path]:
    """A new key pair: ``name.key`` (public, to hand out) and ``name.key_secret``
    (readable by its owner only)."""
    with optional_driver():
        import zmq.auth

    directory.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.auth.create_certificates(directory, name)
    os.chmod(secret, 0o600)
    return Path(public), Path(secret)


def load_public(path: Path) -> bytes:
    import zmq.auth

    try:
        public, _ = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{path}: not a CURVE key file ({exc})") from None
    return public


def load_pair(path: Path) -> tuple[bytes, bytes]:
    import zmq.auth

    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{path}: not a CURVE key file ({exc})") from None
    if secret is None:
        raise InvalidInput(f"{path}: holds no secret key (use the .key_secret file)")
    return public, secret


class AllowList:
    """The credentials provider of the ZAP handler: a client key is allowed when its
    public key file is in ``directory``. The directory is read again when it changed, so
    a key added or removed counts without a restart."""

    def __init__(self, directory: Path) -> None:
        if not directory.is_dir():
            raise InvalidInput(f"{directory}: no directory of allowed client keys")
        self.directory = directory
        self._lock = threading.Lock()
        self._seen: float | None = None
        self._keys: frozenset[bytes] = frozenset()
        self._reload()

    def _reload(self) -> None:
        import zmq.auth

        mtime = self.directory.stat().st_mtime
        with self._lock:
            if self._seen == mtime:
                return
            self._keys = frozenset(zmq.auth.load_certificates(self.directory))
            self._seen = mtime

    def callback(self, domain: str, key: bytes) -> bool:
        """``key`` is the client's public key, Z85-encoded."""
        self._reload()
        if key in self._keys:
            return True
        log.warning(
            "zmq: refused a client with an unknown CURVE key %s (not in %s)",
            key.decode("ascii", "replace"),
            self.directory,
        )
        return False
