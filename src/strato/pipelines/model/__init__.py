"""Pipelines as data: the Jetstream format, rendered workflows and their rules (no I/O
beyond reading pipeline directories)."""
