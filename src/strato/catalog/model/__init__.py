"""What the catalog is made of, as pure data and rules: the event envelope and what it may carry,
JSON Patch, topic routing, RFC 3339 and the bounds on items and filters. No FastAPI, no
database sessions.
"""
