"""Process providers: where a process id runs, chosen by its prefix from the settings
(``processes.providers``), as Stratus routed its ``epa`` globs to endpoints.

A node's own processes (its :class:`~strato.processes.registry.Endpoint` entry points)
run on its job engine; a prefixed id goes to a remote OGC API - Processes server
(:mod:`.ogc`), to a ZeroMQ endpoint (:mod:`.zmq`, served by ``strato endpoint serve
--zmq``) or to a Celery queue (:mod:`.celery_queue`, ``strato endpoint serve --celery``).
A remote process still runs as a job of this node: the job's task (:mod:`.forward`)
executes it remotely and follows it, so its status, progress, cancel, results and
callbacks are this node's, and workflows call it by id like any other.
"""
