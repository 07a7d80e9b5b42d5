"""The pipelines' HTML pages (list, submission, runs) come here; none are served yet."""
