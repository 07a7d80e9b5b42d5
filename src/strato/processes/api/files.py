"""Result files of jobs over HTTP, for their owner (or an administrator) only.

A task returns references relative to its result directory (``{"href": "result.nc"}``);
the results document turns each into an absolute URL, ``<api>/jobs/<id>/results/<output>``
(:func:`strato.processes.model.status.results_document`), served here:

- a NetCDF file as itself, with byte ranges, so ``xr.open_dataset(href + "#mode=bytes")``
  (libnetcdf) or h5netcdf through fsspec read only the parts they need;
- a Zarr store as the keys below that URL, so ``xr.open_dataset(href, engine="zarr")``
  opens it.

Paths come from the job's own record, never from the request alone, and must stay inside
the job's directory.
"""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import FileResponse

from strato.errors import NotFound
from strato.job_engine import JobRecord
from strato.processes.model.status import file_href

NETCDF = "application/x-netcdf"
_ZARR_METADATA = {".zmetadata", ".zgroup", ".zattrs", ".zarray", "zarr.json"}


def result_file(root: Path, job: JobRecord, output: str, key: str = "") -> FileResponse:
    """The file ``key`` of the job's output ``output`` (the file itself when ``key`` is
    empty); NotFound for anything else."""
    href = file_href((job.results or {}).get(output))
    if href is None:
        raise NotFound(f"output {output!r} of job {job.id!r} is not a file")
    base = (root / job.id).resolve()
    target = (base / href / key).resolve() if key else (base / href).resolve()
    if not target.is_relative_to(base):
        raise NotFound(f"no such file in the results of job {job.id!r}")
    if target.is_dir():
        raise NotFound(
            f"output {output!r} is a Zarr store: open it with xr.open_dataset(url, engine='zarr')"
        )
    if not target.is_file():
        raise NotFound(f"no file {key or href!r} in the results of job {job.id!r}")
    if target.suffix == ".nc":
        return FileResponse(target, media_type=NETCDF, filename=f"{job.id}-{output}.nc")
    media = "application/json" if target.name in _ZARR_METADATA else "application/octet-stream"
    return FileResponse(target, media_type=media)
