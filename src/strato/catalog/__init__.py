"""The federated STAC catalog fed by an event stream, as ESGF's next-generation publisher does.

Publishers send create, update and patch events (retraction and replication are patches)
in ESGF's event envelope (:mod:`strato.catalog.events`); index nodes consume the stream,
each with its own filter, and keep their STAC catalogs; what cannot be applied goes to an
error topic with the original event and an RFC 9457 problem. :mod:`strato.catalog.generator`
makes realistic CMIP6 and CORDEX records from the embedded controlled vocabularies
(:mod:`strato.catalog.vocab`) for demos, tests and benchmarks.
"""
