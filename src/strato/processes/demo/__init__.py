"""Demo material of the processes capability (none yet: hello-world ships as a real
process, since clients expect it on any OGC API - Processes server)."""
