"""Drive ``purgatory serve`` with a third-party V2 client (NVIDIA's ``tritonclient.http``) from the peer venv.

    bash perf/peer/setup_mlserver.sh      # installs tritonclient[http] too
    purgatory serve --registry results/registry-bench --models light --port 8470 &
    results/peer-venv/bin/python perf/peer/v2_client_check.py http://127.0.0.1:8470 light

Checks liveness, readiness, model metadata and an inference with JSON tensors; exits 1 on any mismatch.
"""

from __future__ import annotations

import sys

import numpy as np
import tritonclient.http as httpclient


def main(url: str, model: str) -> int:
    client = httpclient.InferenceServerClient(url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(model)
    meta = client.get_model_metadata(model)
    inp = meta["inputs"][0]
    n_features = int(inp["shape"][-1])
    X = np.random.default_rng(0).standard_normal((3, n_features)).astype(np.float32)
    tensor = httpclient.InferInput(inp["name"], list(X.shape), "FP32")
    tensor.set_data_from_numpy(X, binary_data=False)
    wanted = [httpclient.InferRequestedOutput("probabilities", binary_data=False)]
    result = client.infer(model, [tensor], outputs=wanted, request_id="check-1")
    proba = result.as_numpy("probabilities")
    ok = proba.shape == (3, 2) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    print(
        f"tritonclient.http against {url}: metadata {meta['name']} v{meta['versions']}, "
        f"probabilities {proba[:, 1].round(4).tolist()}, ok={ok}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
