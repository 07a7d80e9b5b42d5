"""Demo tooling of the catalog: the CMIP6/CORDEX item generator, its vocabularies and the
three-node playground. Production modules never import this package.
"""
