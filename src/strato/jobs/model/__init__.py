"""Pure rules of jobs: ids, one-line reasons, what a task name may be."""
