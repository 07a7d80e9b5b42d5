"""strato.pipelines: Jetstream-format pipelines run as a central service (issue 15)."""
