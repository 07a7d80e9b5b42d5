"""HTTP adapters of pipelines: Centro's new-run and runs API (``/api/v1``) and GA4GH WES
1.1 (``/ga4gh/wes/v1``)."""
