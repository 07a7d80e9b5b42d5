"""Datasets as a service: xarray datasets served as Zarr over HTTP, raw chunk
passthrough from NetCDF/HDF5 files, STAC and intake catalogs, plots and diagnostics.

Layout (the same in every capability):
  model/        pure data and rules: selection syntax, byte budget, Zarr encodings
  datasets/     registrations, opening datasets (decoded and raw), allowed roots, HDF5 lock
  zarr_views/   Zarr v2/v3 metadata and encoded chunks (processed /zarr)
  raw/          kerchunk references and the raw byte-range store (/kerchunk)
  analysis/     plots and diagnostics
  service.py    the operations shared by HTTP and the CLI
  catalogs.py   STAC and intake documents of what a node serves
  api/          HTTP adapters; web/ pages; demo/ the demo collection
  cli.py, capability.py
"""
