"""Built-in processes over served datasets: subset, reduce, climatology, anomaly,
resample and difference of a variable of a :mod:`strato.data` dataset (or a Zarr or
NetCDF path under the allowed roots), each a job-engine task
(:mod:`strato.processes.builtin.tasks`) described for OGC API - Processes
(:mod:`strato.processes.builtin.descriptions`).

A request is parsed and checked before any data is touched
(:mod:`~strato.processes.builtin.domain`), the variable opened in the worker from the
server's own settings (:mod:`~strato.processes.builtin.sources`), its domain selected
(:mod:`~strato.processes.builtin.grid`), computed (long reductions block by block,
:mod:`~strato.processes.builtin.reduce`) and written as NetCDF or Zarr to the job's
result directory (:mod:`~strato.processes.builtin.results`). Never pickled.
"""
