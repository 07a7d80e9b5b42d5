"""Where a pipeline's tasks run: one class per backend behind :class:`Backend`."""
