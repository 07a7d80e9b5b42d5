"""Zarr v2 and v3 views of a dataset: metadata documents and encoded chunks.
"""
