"""The processes capability keeps no tables (jobs are the job engine's), so it has no
schema history: its capability object names no migrations package. This package is here
so that every capability has the same rooms; a first table brings ``versions/``."""
