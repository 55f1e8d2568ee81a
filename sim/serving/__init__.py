"""The scoring service as a queue inside the simulation, and how much of it a rollout needs.

- :mod:`sim.serving.queue`: a batching multi-server queue (workers, micro-batching, queue limit, timeouts),
  calibrated from the real server's measurements and checked against Erlang C;
- :mod:`sim.serving.service`: the engine's ``[serving]`` section: a run's scoring traffic goes through it;
- :mod:`sim.serving.readiness`: peak demand at full rollout and the workers that meet an SLO
  (``purgatory readiness``, :mod:`sim.cli.readiness`).
"""
