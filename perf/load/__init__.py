"""The load generator: open- and closed-loop HTTP load against an Open Inference Protocol (V2) server.

- :mod:`perf.load.requests`: the requests to send (V2 infer bodies built once from the model's signature);
- :mod:`perf.load.client`: a lean keep-alive HTTP/1.1 client on asyncio protocols;
- :mod:`perf.load.open_loop`: Poisson arrivals at a rate, latency from the scheduled send time, SLO sweep;
- :mod:`perf.load.closed_loop`: C users sending on each answer;
- :mod:`perf.load.report`: percentiles (failures count as infinite), goodput, the results file and figure.

The command is ``purgatory bench load`` (:mod:`sim.cli.bench_load`). The names below are the package's API.
"""

from perf.load.closed_loop import run_closed
from perf.load.open_loop import MAX_REQUESTS, run_open, sweep
from perf.load.report import SCHEMA, meta, passes, summarize, write_results
from perf.load.requests import Target, infer_body, make_target

__all__ = ["MAX_REQUESTS", "SCHEMA", "Target", "infer_body", "make_target", "meta", "passes", "run_closed",
           "run_open", "summarize", "sweep", "write_results"]
