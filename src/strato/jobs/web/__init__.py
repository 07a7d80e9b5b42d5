"""The jobs pages (a jobs list with live status comes with the processes pages)."""
