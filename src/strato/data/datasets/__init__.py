"""Registered datasets: registrations, opening them (decoded and raw) inside the allowed
roots, the HDF5 lock and where dask computes.
"""
