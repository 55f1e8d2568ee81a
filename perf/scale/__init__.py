"""Full-scale simulation benchmarks: one case study's full run, timed, beside a same-run scoring baseline.

``python -m perf.scale.sepsis`` (172 hospitals x 365 days) and ``python -m perf.scale.maintenance`` (a Ford
fleet-year and a manufacturer rollout); :mod:`perf.scale.timing` holds what they share: timing the domain's
onnxruntime calls, the in-memory baseline, the report row and the results file.
"""
