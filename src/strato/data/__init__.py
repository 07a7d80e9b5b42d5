"""Datasets as a service: xarray datasets served as Zarr over HTTP, raw chunk
passthrough from NetCDF/HDF5 files, STAC and intake catalogs, plots and diagnostics.

Core modules (no FastAPI):
  registry      registrations in the database, allowed roots
  sources       opening a registration as xarray (decoded and raw), cache, fingerprints
  zarr_store    Zarr v2/v3 metadata and encoded chunks of a dataset (processed /zarr)
  references    kerchunk references and the raw byte-range store (/kerchunk)
  demo          the CMIP6-like demo collection
  selection     the selection syntax of plot URLs
  plots         PNG plots
  diagnostics   groupby reductions
  budget        the byte budget of plots and diagnostics
  catalogs      STAC and intake documents
  service       registering, opening and removing datasets (shared by HTTP and CLI)
  compute       where dask runs: threads or a distributed cluster
HTTP: routes.py (API and stores), pages.py (web pages); CLI: cli.py;
the platform hook: capability.py.
"""
