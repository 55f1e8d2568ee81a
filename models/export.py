"""Export a LightGBM booster to ONNX and check parity with the native model."""

from __future__ import annotations

import json
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import onnx
import onnxruntime as ort
from onnxmltools import convert_lightgbm
from onnxmltools.convert.common.data_types import FloatTensorType

from models.scorer import INPUT_NAME, PROBA_OUTPUT  # defined with the scorer, which needs no lightgbm

#: onnxmltools 1.16 targets at most opset 15 (measured here; see docs/batch-benchmark.md).
TARGET_OPSET = 15


def to_onnx(booster: lgb.Booster, n_features: int, name: str) -> bytes:
    """Convert a binary LightGBM booster to an ONNX model with input ``input`` [N, n_features] float32.

    Outputs: ``label`` (int64 [N]) and ``probabilities`` (float32 [N, 2]).
    """
    model = convert_lightgbm(
        booster,
        name=name,
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        target_opset=TARGET_OPSET,
        zipmap=False,
    )
    for out in model.graph.output:  # the converter declares a fixed batch of 1; the batch is dynamic
        dims = out.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "N"
    return model.SerializeToString()


def split_thresholds(booster: lgb.Booster) -> dict[int, np.ndarray]:
    """All numerical split thresholds of the booster, by feature index."""
    out: dict[int, list[float]] = {}

    def walk(node: dict) -> None:
        if "split_feature" in node:
            out.setdefault(node["split_feature"], []).append(node["threshold"])
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    return {k: np.unique(np.array(v, dtype=np.float64)) for k, v in out.items()}


def threshold_probe_rows(booster: lgb.Booster, base: np.ndarray, max_per_feature: int = 64) -> np.ndarray:
    """Rows that put one feature just below, at, and just above a split threshold, in float32.

    ``base`` supplies realistic values for the other features (cycled).
    """
    rows = []
    rng = np.random.default_rng(0)  # fixed: the probe set itself must be the same on every check
    for feat, thresholds in split_thresholds(booster).items():
        picked = thresholds if len(thresholds) <= max_per_feature else rng.choice(thresholds, max_per_feature)
        t32 = np.unique(np.concatenate([picked.astype(np.float32), np.float32([1e-35, -1e-35, 0.0])]))
        for values in (np.nextafter(t32, np.float32(-np.inf)), t32, np.nextafter(t32, np.float32(np.inf))):
            block = base[rng.integers(0, len(base), len(values))].copy()
            block[:, feat] = values
            rows.append(block)
    return np.concatenate(rows).astype(np.float32) if rows else base[:0]


@dataclass(frozen=True)
class ParityReport:
    rows: int
    threshold_rows: int
    max_abs_diff: float
    labels_equal: bool
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance and self.labels_equal

    def to_json(self) -> str:
        return json.dumps({**self.__dict__, "ok": self.ok})


def check_parity(
    booster: lgb.Booster, onnx_bytes: bytes, X_sample: np.ndarray, tolerance: float = 1e-5
) -> ParityReport:
    """Compare onnxruntime with native LightGBM on sample rows plus float32 rows at every split threshold."""
    probe = threshold_probe_rows(booster, X_sample)
    X = np.concatenate([X_sample.astype(np.float32), probe])
    native = booster.predict(X.astype(np.float64))
    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    label, proba = sess.run(["label", PROBA_OUTPUT], {INPUT_NAME: X})
    diff = float(np.max(np.abs(proba[:, 1].astype(np.float64) - native))) if len(X) else 0.0
    labels_equal = bool(np.array_equal(label.astype(int), (native > 0.5).astype(int)))
    return ParityReport(len(X), len(probe), diff, labels_equal, tolerance)


def onnx_input_width(onnx_bytes: bytes) -> int:
    model = onnx.load_from_string(onnx_bytes)
    return model.graph.input[0].type.tensor_type.shape.dim[1].dim_value
