"""Optional engines: which extra installs each one's driver, and the error when it is missing.

The base install runs the embedded default (SQLite and the embedded bus). Every other
engine's driver comes with an extra (``pip install 'strato[postgres]'``) and is imported
only when that engine is configured, so a missing one is found where it is first needed:
code that loads an engine's driver does it inside :func:`optional_driver`, which turns the
bare ``ModuleNotFoundError`` into one line naming the extra to install.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from strato.errors import InvalidInput

# Top-level module of each optional driver: the extra that installs it, and what needs it.
EXTRAS: dict[str, tuple[str, str]] = {
    "psycopg": ("postgres", "a PostgreSQL database"),
    "pymysql": ("mysql", "a MySQL or MariaDB database"),
    "nats": ("nats", "the NATS bus"),
    "aiokafka": ("kafka", "the Kafka bus"),
    "distributed": ("dask-distributed", "a dask scheduler (dask_scheduler)"),
    "celery": ("celery", "the Celery job engine"),
    "zmq": ("zmq", "the ZeroMQ transport of processes"),
}


class MissingExtra(InvalidInput):
    """The configuration names an engine whose driver is not installed."""


def missing_extra(exc: ModuleNotFoundError) -> MissingExtra | None:
    """The error to raise for ``exc``, or None when the missing module is no optional driver
    (a broken install of something else must keep its own message)."""
    module = (exc.name or "").partition(".")[0]
    if module not in EXTRAS:
        return None
    extra, what = EXTRAS[module]
    return MissingExtra(
        f"{what} needs the {module} package, which is not installed: "
        f"pip install 'strato[{extra}]'"
    )


@contextmanager
def optional_driver() -> Iterator[None]:
    """Run the import or connection set-up of an optional engine; a missing driver becomes
    :class:`MissingExtra`."""
    try:
        yield
    except ModuleNotFoundError as exc:
        error = missing_extra(exc)
        if error is None:
            raise
        raise error from None
