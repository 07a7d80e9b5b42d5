"""Streaming keeps no tables: sessions live in the control server."""
