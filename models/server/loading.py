"""The models a server serves: registry entries in onnxruntime sessions, each with its micro-batcher."""

from __future__ import annotations

import sys
from collections import deque
from pathlib import Path

import numpy as np
import onnxruntime as ort

from models.registry import Registry
from models.scorer import session_options
from models.server.batching import BatchConfig, MicroBatcher
from sim.errors import UserError

HANDLE_SAMPLES = 20_000  # per model: recent handler times kept for the simulator's calibration


class ServedModel:
    """One registry model: an onnxruntime session (1 intra-op thread) and its micro-batcher."""

    def __init__(self, name: str, version: str, onnx_path: Path, batch: BatchConfig):
        self.name, self.version = name, version
        self.session = ort.InferenceSession(
            str(onnx_path), session_options(1), providers=["CPUExecutionProvider"]
        )
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.n_features = int(inp.shape[1])
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.batcher = MicroBatcher(self.predict, batch)
        self.batcher.warm_up(np.zeros((1, self.n_features), dtype=np.float32))
        #: seconds from the infer handler's start to its 200 answer, most recent requests (for calibration)
        self.handle_times: deque[float] = deque(maxlen=HANDLE_SAMPLES)
        self.handled = 0

    def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """All model outputs for float32 rows ``X`` [N, F]."""
        return dict(zip(self.output_names, self.session.run(None, {self.input_name: X}), strict=True))

    def metadata(self) -> dict:
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": "onnxruntime_onnx",
            "inputs": [{"name": self.input_name, "datatype": "FP32", "shape": [-1, self.n_features]}],
            "outputs": [
                {"name": "label", "datatype": "INT64", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
            ],
        }


def load_models(registry: Registry, specs: list[str] | None, batch: BatchConfig) -> dict[str, ServedModel]:
    """Load ``NAME`` or ``NAME@KEY`` models from the registry (every model in it when ``specs`` is empty).

    A bare NAME picks its most recently written version. With no ``specs``, folders of the registry that hold
    no model are skipped and said on stderr with the reason. Raises UserError for an unknown name or key, or
    a registry with no models.
    """
    if not specs:
        specs = registry.models()
        for name, why in registry.not_models().items():
            print(f"serve: skipping {registry.root / name}: {why}", file=sys.stderr)
    models: dict[str, ServedModel] = {}
    for spec in specs:
        name, _, key = spec.partition("@")
        versions = registry.versions(name)
        if not versions:
            known = ", ".join(registry.models()) or "none"
            raise UserError(f"--models: no model {name!r} in registry {registry.root}; models there: {known}")
        if not key:
            key = max(versions, key=lambda k: (registry.root / name / k / "card.json").stat().st_mtime)
        elif key not in versions:
            raise UserError(f"--models: {name!r} has no version {key!r}; allowed: {', '.join(versions)}")
        entry = registry.load(name, key)
        models[name] = ServedModel(name, key, entry.onnx_path, batch)
    if not models:
        raise UserError(f"--models: registry {registry.root} holds no models to serve")
    return models
