"""Demo data of streaming: none (the loopback demo is in docs/stream.md)."""
