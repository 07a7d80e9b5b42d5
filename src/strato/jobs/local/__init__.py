"""The ``local`` executor: worker processes of this node, each running one task at a
time, talking to the engine over pipes in JSON lines."""
