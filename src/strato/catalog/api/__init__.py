"""HTTP adapters of the catalog: the STAC API (plain FastAPI routes), the legacy
``/esg-search`` routes and the publication status routes.
"""
