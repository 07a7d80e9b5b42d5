"""Tasks to try the job engine with (``strato.jobs.demo.tasks``); production code never
imports this package."""
