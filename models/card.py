"""Model cards: what the model saw, how well it ranks and how well it is calibrated."""

from __future__ import annotations

import hashlib
import platform

import lightgbm
import numpy as np
import onnxruntime
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def data_hash(X: np.ndarray, y: np.ndarray) -> str:
    """sha256 of the training matrix and labels (bytes in C order, dtypes included)."""
    h = hashlib.sha256()
    for arr in (np.ascontiguousarray(X), np.ascontiguousarray(y)):
        h.update(str(arr.dtype).encode())
        h.update(str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict:
    """Reliability table on equal-width probability bins, the expected calibration error and Brier score."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        m = idx == b
        if not m.any():
            continue
        mean_p, frac = float(p[m].mean()), float(y[m].mean())
        ece += m.mean() * abs(mean_p - frac)
        table.append(
            {
                "bin_lo": float(edges[b]),
                "bin_hi": float(edges[b + 1]),
                "n": int(m.sum()),
                "mean_predicted": mean_p,
                "observed_rate": frac,
            }
        )
    return {"brier": float(brier_score_loss(y, p)), "ece": float(ece), "reliability": table}


def build_card(  # noqa: PLR0917
    name: str,
    feature_names: list[str],
    X_train: np.ndarray,
    y_train: np.ndarray,
    y_valid: np.ndarray,
    p_valid: np.ndarray,
    onnx_sha256: str,
    config: dict,
    parity: dict,
) -> dict:
    """A JSON-ready model card. Metrics are on the held-out validation rows."""
    return {
        "name": name,
        "features": list(feature_names),
        "training_rows": len(y_train),
        "training_positive_rate": float(np.mean(y_train)),
        "training_data_sha256": data_hash(X_train, y_train),
        "validation_rows": len(y_valid),
        "auroc": float(roc_auc_score(y_valid, p_valid)),
        "auprc": float(average_precision_score(y_valid, p_valid)),
        "calibration": calibration(y_valid, p_valid),
        "onnx_sha256": onnx_sha256,
        "parity": parity,
        "config": config,
        "versions": {
            "lightgbm": lightgbm.__version__,
            "onnxruntime": onnxruntime.__version__,
            "python": platform.python_version(),
        },
    }
