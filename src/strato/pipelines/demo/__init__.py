"""Demo material of pipelines (example pipelines for the playground); none yet."""
