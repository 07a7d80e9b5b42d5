"""Pure data and rules of the data service: the selection syntax of plot URLs, the byte
budget of plots and diagnostics, and the encodings of Zarr documents.
"""
