"""Kerchunk references to NetCDF/HDF5 files and the raw byte-range store behind /kerchunk.
"""
