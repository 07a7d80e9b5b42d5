"""The dask executor: jobs run on the workers of a dask.distributed scheduler.

:mod:`.runner` is what a worker runs (a task named ``module:function``, JSON in and out);
:mod:`.executor` is the server's side.
"""
