"""HTTP adapters of the jobs capability: none of its own; OGC API - Processes
(strato.processes) serves jobs over HTTP through ``ctx.jobs``."""
