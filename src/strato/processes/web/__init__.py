"""HTML pages of the processes capability."""
