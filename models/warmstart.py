"""Warm-started retraining: boosting continued from a live model, the correction exported to ONNX alone.

A retrain on a few weeks of post-change rows holds far fewer positives than the development data, so a model
trained from scratch on them ranks worse out of time. Continuing the boosting from the live model's log-odds
(LightGBM ``init_score``) keeps what it knows and learns only the shift. The correction is exported, checked
and registered like any model; :class:`WarmStartScorer` scores ``sigmoid(logit(base) + logit(correction))``
with both in onnxruntime. Used by the maintenance and sepsis retraining.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from models.registry import Registry, RegistryEntry
from models.train import TrainConfig


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


class WarmStartScorer:
    """A warm-started model: the live model's log-odds plus a correction model's (both ONNX, onnxruntime).

    ``p = sigmoid(logit(base(x)) + logit(correction(x)))``: the correction is a LightGBM booster fitted with
    the base model's log-odds as its initial score (boosting continued from the live model), exported alone.
    """

    def __init__(self, base, correction):
        self.base, self.correction = base, correction
        self.n_features = correction.n_features

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 0:
            return np.empty(0, dtype=np.float32)
        z = logit(self.base.predict_proba(X)) + logit(self.correction.predict_proba(X))
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


def fit_correction(  # noqa: PLR0917
    name: str, X: np.ndarray, y: np.ndarray, groups: np.ndarray, init: np.ndarray, feature_names: list[str],
    config: TrainConfig, seed: int, registry: Registry | None, cache_config: dict,
) -> RegistryEntry:
    """Boosting continued from a live model: LightGBM on ``(X, y)`` with initial scores ``init`` (the live
    model's log-odds), float32-snapped, exported to ONNX, parity-checked, carded and registered.

    Rows are split into training and validation rows by unit (``groups``), as in ``models.pipeline``.
    """
    registry = registry or Registry()
    key_config = {"name": name, "train": dataclasses.asdict(config), "seed": int(seed),
                  "features": list(feature_names), "data": cache_config, "warm_start": True}

    def build() -> tuple[bytes, str, dict]:
        import lightgbm as lgb  # noqa: PLC0415

        from models.card import build_card  # noqa: PLC0415
        from models.export import check_parity, to_onnx  # noqa: PLC0415
        from models.train import snap_thresholds_to_float32  # noqa: PLC0415

        rng = np.random.default_rng(seed)
        uniq = np.unique(groups)
        held = rng.permutation(uniq)[: int(len(uniq) * 0.25)]
        in_valid = np.isin(groups, held)
        tr, va = np.flatnonzero(~in_valid), np.flatnonzero(in_valid)
        params = {
            "objective": "binary", "num_leaves": config.num_leaves, "learning_rate": config.learning_rate,
            "min_data_in_leaf": config.min_data_in_leaf, "feature_fraction": config.feature_fraction,
            "bagging_fraction": config.bagging_fraction, "bagging_freq": 1, "seed": int(seed),
            "deterministic": True, "force_row_wise": True, "num_threads": 2, "verbosity": -1,
        }
        data = lgb.Dataset(X[tr], label=y[tr], init_score=init[tr], feature_name=list(feature_names))
        booster = snap_thresholds_to_float32(lgb.train(params, data, num_boost_round=config.n_trees))
        onnx_bytes = to_onnx(booster, len(feature_names), name)
        parity = check_parity(booster, onnx_bytes, X[va[:2000]])
        if not parity.ok:
            raise RuntimeError(f"ONNX parity failed for {name}: {parity.to_json()}")
        z = init[va] + booster.predict(X[va].astype(np.float64), raw_score=True)
        card = build_card(name, feature_names, X[tr], y[tr], y[va], 1.0 / (1.0 + np.exp(-z)),
                          hashlib.sha256(onnx_bytes).hexdigest(), key_config,
                          parity.__dict__ | {"ok": parity.ok})
        return onnx_bytes, booster.model_to_string(), card

    return registry.get_or_create(name, key_config, build)
