"""Batch scoring through onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

#: the ONNX input and probability output names every model of the suite has (see models/export.py)
INPUT_NAME = "input"
PROBA_OUTPUT = "probabilities"


def session_options(threads: int = 1, sequential: bool = True, optimize: bool = True) -> ort.SessionOptions:
    """Session options: intra-op threads, sequential execution, full graph optimisation."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL if sequential else ort.ExecutionMode.ORT_PARALLEL
    so.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    return so


class OnnxScorer:
    """Positive-class probabilities of a binary ONNX classifier, scored in chunks.

    ``chunk_rows`` bounds the memory held by one onnxruntime call (a 10M-row call peaked at 2.2 GB here).
    """

    def __init__(self, model: bytes | str | Path, threads: int = 1, chunk_rows: int = 262_144):
        if isinstance(model, (str, Path)):
            model = Path(model).read_bytes()
        self.session = ort.InferenceSession(
            model, session_options(threads), providers=["CPUExecutionProvider"]
        )
        inp = self.session.get_inputs()[0]
        if inp.name != INPUT_NAME:
            raise ValueError(f"ONNX input name (={inp.name!r}) must be {INPUT_NAME!r}")
        self.n_features = int(inp.shape[1])
        self.chunk_rows = int(chunk_rows)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """float32 [N] probabilities of the positive class for float32 [N, n_features] rows."""
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X shape (={X.shape}) must be (N, {self.n_features})")
        X = np.ascontiguousarray(X, dtype=np.float32)
        if len(X) == 0:
            return np.empty(0, dtype=np.float32)
        if len(X) <= self.chunk_rows:
            return self.session.run([PROBA_OUTPUT], {INPUT_NAME: X})[0][:, 1]
        out = np.empty(len(X), dtype=np.float32)
        for start in range(0, len(X), self.chunk_rows):
            stop = start + self.chunk_rows
            out[start:stop] = self.session.run([PROBA_OUTPUT], {INPUT_NAME: X[start:stop]})[0][:, 1]
        return out
