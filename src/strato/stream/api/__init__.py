"""HTTP routes of streaming: ``/api/stream`` (sessions, counters, rates, release) beside
the control plane, which is gRPC (:mod:`strato.stream.control`)."""
