"""What the executors whose workers are not this process's share (celery, dask): the
server's bookkeeping of runs (:mod:`.runs`) and the worker's side of a run (:mod:`.task`)."""
