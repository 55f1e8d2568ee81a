"""Scenario sweeps: many parameter points x replications, on a local process pool or a Dask cluster.

- :mod:`sim.sweeps.spec`: sweep specs (TOML) and their designs (grid, zip, LHS, Sobol, Morris);
- :mod:`sim.sweeps.runner`: runs (point, replication) on a process pool or Dask, one part file per run;
- :mod:`sim.sweeps.session`: one session of a sweep (plan, resume, progress, manifest);
- :mod:`sim.sweeps.analysis`: tidy tables, per-point confidence intervals, sensitivity indices, figures.

The command is ``purgatory sweep`` (:mod:`sim.cli.sweep`).
"""
