"""The one lock every call into libhdf5 takes.

The HDF5 library inside the netCDF4 wheel is built without thread safety: two threads in
it at once (opening two files, reading metadata while another reads chunks, writing the
demo collection while requests read) crash the process with SIGSEGV or SIGBUS, or fail
with "NetCDF: HDF error". xarray takes its own lock around opens and chunk reads, but not
around the metadata calls of an open, and h5py (kerchunk's reader) uses another lock; on
installs where both link one system libhdf5 they would race each other too. So strato
holds this lock around every open, metadata read, reference build and write, and hands it
to xarray (``lock=HDF5_LOCK``) so the chunk reads xarray and dask do later take it as well.

It is re-entrant, because xarray takes the lock it was given inside the opens that strato
already holds it around; and it pickles to the same lock of the receiving process, because
a Dask cluster ships the lock with the task graph (the same way xarray's
``SerializableLock`` does).
"""

from __future__ import annotations

import threading
from types import TracebackType


class ProcessLock:
    """A re-entrant lock that unpickles to the process's own :data:`HDF5_LOCK`."""

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> ProcessLock:
        self._lock.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock.release()

    def __reduce__(self) -> str:
        # Pickled by name: whoever unpickles it gets the module-level lock of its process.
        return "HDF5_LOCK"


HDF5_LOCK = ProcessLock()
