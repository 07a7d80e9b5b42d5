"""Searching a node's items: filters (CQL2, query, free text), the SQL they become,
sorting, keyset paging, facets, queryables, and the legacy ESGF search vocabulary.
Readable without FastAPI.
"""
