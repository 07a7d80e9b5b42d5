"""HTTP adapters of the catalog: the STAC API (built with stac-fastapi), the legacy
``/esg-search`` routes and the publication status routes.
"""
