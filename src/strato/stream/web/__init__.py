"""Pages of streaming: none yet (a streams page is planned)."""
