"""Web pages of the catalog.
"""
