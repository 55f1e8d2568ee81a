"""The real V2 (Open Inference Protocol) inference server over onnxruntime.

- :mod:`models.server.protocol`: V2 request parsing and answers (no HTTP, no model);
- :mod:`models.server.loading`: registry models loaded into onnxruntime sessions;
- :mod:`models.server.batching`: adaptive micro-batching of concurrent requests;
- :mod:`models.server.app`: the aiohttp application (routes, admission control, auth, draining);
- :mod:`models.server.runner`: serving until SIGTERM, worker processes sharing a port.

The command is ``purgatory serve`` (:mod:`sim.cli.serve`).
"""
