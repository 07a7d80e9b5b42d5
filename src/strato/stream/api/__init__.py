"""HTTP routes of streaming: none yet (the control plane is gRPC; a streams page is planned)."""
