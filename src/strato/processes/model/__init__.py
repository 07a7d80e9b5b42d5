"""Pure shapes and rules of OGC API - Processes: descriptions, execute requests,
input validation, status documents and the exceptions the standard names."""
