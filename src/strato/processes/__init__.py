"""strato.processes: OGC API - Processes Part 1 Core 1.0 over the job engine.

Processes are described (``model/``), registered from entry points (``registry``), and
executed as jobs of the engine another capability offers through ``ctx.jobs``; the HTTP
API lives under ``/processes-api`` (docs/processes.md says why there)."""
