"""The celery executor: jobs run on Celery workers (`strato worker`) over Redis or RabbitMQ.

:mod:`.app` is the Celery application both sides share (JSON only, late acks) and the
worker's side of a run; :mod:`.executor` is the server's side. Job state stays in strato's
database: workers send their events back on a queue of the server's own, never through a
Celery result backend.
"""
