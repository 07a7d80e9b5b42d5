"""HTTP adapters of the processes capability: the OGC API - Processes routes."""
