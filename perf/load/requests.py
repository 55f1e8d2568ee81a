"""What the load generator sends: pre-built V2 infer requests for a model on a server.

:func:`make_target` reads the model's input signature from the server (``GET /v2/models/{model}``) and builds
``n_bodies`` different request bodies of seeded random rows; the client cycles through them, so sending costs
no JSON encoding and the model does not score one row over and over.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np

from sim.errors import UserError


@dataclass(frozen=True)
class Target:
    """Where and what to send: host, port, and a few pre-built HTTP requests cycled through."""

    host: str
    port: int
    requests: tuple[bytes, ...]
    model: str


def infer_body(rows: np.ndarray, input_name: str = "input") -> bytes:
    """V2 JSON infer body for float32 rows [N, F]."""
    doc = {
        "inputs": [
            {
                "name": input_name,
                "shape": list(rows.shape),
                "datatype": "FP32",
                "data": [float(v) for v in rows.ravel()],
            }
        ]
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def make_target(
    url: str,
    model: str,
    rows: int = 1,
    *,
    seed: int = 0,
    token: str | None = None,
    n_bodies: int = 64,
    n_features: int | None = None,
    path: str | None = None,
) -> Target:
    """Build a Target: reads the model's input shape from ``GET /v2/models/{model}`` unless ``n_features``.

    Bodies are ``rows`` rows of seeded standard normal features; ``n_bodies`` different ones are cycled so
    the model does not score one row over and over (branch predictors would flatter it). Raises UserError
    when the server cannot be reached or does not know the model.
    """
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise UserError(f"--url = {url!r}: allowed: http://HOST:PORT")
    host, port = parts.hostname, parts.port or 80
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    input_name = "input"
    if n_features is None:
        try:
            req = urllib.request.Request(f"http://{host}:{port}/v2/models/{model}", headers=headers)
            with urllib.request.urlopen(req, timeout=5) as resp:
                meta = json.loads(resp.read())
        except OSError as err:
            raise UserError(
                f"--url/--model: cannot read metadata of model {model!r} at {url}: {err}"
            ) from None
        inp = meta["inputs"][0]
        input_name, n_features = inp["name"], int(inp["shape"][-1])
    rng = np.random.default_rng(seed)
    path = path or f"/v2/models/{model}/infer"
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    reqs = []
    for _ in range(n_bodies):
        body = infer_body(rng.standard_normal((rows, n_features)).astype(np.float32), input_name)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n{auth}"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        reqs.append(head.encode() + body)
    return Target(host, port, tuple(reqs), model)
