"""The CMIP6-like demo collection. Production modules never import this package.
"""
