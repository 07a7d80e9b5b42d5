"""The ZeroMQ transport of processes: a node's processes served to other nodes over a
ROUTER socket (:mod:`.server`, ``strato endpoint serve --zmq``) and called by a DEALER
(:mod:`.client`, the ``zmq`` provider), with CURVE "ironhouse" security (:mod:`.keys`)
and JSON messages (:mod:`.protocol`)."""
