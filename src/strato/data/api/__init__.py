"""HTTP adapters of the data service: dataset endpoints, Zarr stores and the raw-chunk
fast path.
"""
