"""The federated STAC catalog fed by an event stream, as ESGF's next-generation publisher does.

Publishers send create, update and patch events (retraction and replication are patches)
in ESGF's event envelope (:mod:`strato.catalog.model.events`); index nodes consume the
stream, each with its own filter, and keep their STAC catalogs; what cannot be applied goes
to an error topic with the original event and an RFC 9457 problem.

Layout (the same in every capability):
  model/     pure data and rules: events, JSON Patch, topics, RFC 3339, limits
  store.py   the item store
  ingest/    consumer, applier, publisher, node, data link
  search/    filters, SQL, paging, facets, queryables, legacy search vocabulary
  api/       STAC API, /esg-search routes, publication status
  web/       pages; demo/ generator, vocabularies and playground
  cli.py, capability.py
"""
