"""Workflows: DAGs of process calls whose inputs may be other calls' outputs (OGC API -
Processes Part 3 nested processes, or the ``workflow`` process's explicit form, several
outputs allowed), run as one job by a coordinator in the server
(:mod:`~strato.processes.workflows.coordinator`); the Stratus Request Specification is
translated into the same plan (:mod:`~strato.processes.workflows.stratus`)."""
