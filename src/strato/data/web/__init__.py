"""Web pages of the data service.
"""
