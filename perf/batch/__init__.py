"""The batch scoring benchmark (``purgatory bench batch``): 1k to 100M records, onnxruntime beside the rest.

- :mod:`perf.batch.catalogue`: the models that can be scored and how to make their feature rows; runtimes;
- :mod:`perf.batch.data`: generated Parquet data (reused while valid), input checks, chunked scoring;
- :mod:`perf.batch.cases`: one case in a fresh process (its own peak RSS), and the paired timing;
- :mod:`perf.batch.on_dask`: the same scoring on a Dask cluster;
- :mod:`perf.batch.driver`: sizes x runtimes x modes; :mod:`perf.batch.report`: ratios, batch.json, figure.
"""
