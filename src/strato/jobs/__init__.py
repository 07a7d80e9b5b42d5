"""strato.jobs: the job engine. Jobs are database records; executors (a local process pool
today) run their tasks; other capabilities use it through ``ctx.jobs``
(:class:`strato.job_engine.JobEngine`)."""
