"""strato.stream: memory-to-memory streaming between facilities through gateways, with a
SciStream-compatible control server (issue 16)."""
