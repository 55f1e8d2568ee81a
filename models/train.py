"""Train a LightGBM binary classifier with an explicit integer seed and deterministic settings."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import lightgbm as lgb

_THRESHOLD_LINE = re.compile(r"^threshold=(.*)$", re.MULTILINE)
_TREE_SIZES_LINE = re.compile(r"^tree_sizes=.*\n", re.MULTILINE)


@dataclass(frozen=True)
class TrainConfig:
    """LightGBM hyper-parameters that matter for the suite (all documented in LightGBM's parameter guide)."""

    n_trees: int = 100
    num_leaves: int = 31
    learning_rate: float = 0.08
    min_data_in_leaf: int = 50
    feature_fraction: float = 0.9
    bagging_fraction: float = 0.8
    extra: dict = field(default_factory=dict)


#: LightGBM reads |x| <= kZeroThreshold (the float 1e-35f) as exactly 0 before comparing with thresholds.
ZERO_BAND = float(np.float32(1e-35))


def float32_thresholds(t: np.ndarray) -> np.ndarray:
    """float32 thresholds ``t'`` such that ``x <= t'`` equals LightGBM's decision for every float32 ``x``.

    LightGBM decides ``eff(x) <= t`` in double precision, where ``eff(x) = 0`` if ``|x| <= ZERO_BAND``
    else ``x``. Away from zero that is ``x <= floor32(t)``; inside the band the zero rule decides.
    """
    t = np.asarray(t, dtype=np.float64)
    f32 = t.astype(np.float32)
    too_big = f32.astype(np.float64) > t
    f32[too_big] = np.nextafter(f32[too_big], np.float32(-np.inf))
    z = np.float32(ZERO_BAND)
    f32 = np.where((t >= 0) & (t < ZERO_BAND), z, f32)
    f32 = np.where((t >= -ZERO_BAND) & (t < 0), np.nextafter(-z, np.float32(-np.inf)), f32)
    return f32.astype(np.float64)


def snap_thresholds_to_float32(booster: lgb.Booster) -> lgb.Booster:
    """Return a booster whose split thresholds are float32 values with the same decisions on float32 input.

    LightGBM compares ``x <= t`` in double precision; ONNX TreeEnsemble stores thresholds as float32. For any
    float32 input ``x``, ``x <= t`` holds exactly when ``x <= float32_floor(t)`` (with LightGBM's zero band
    handled by :func:`float32_thresholds`), so snapping leaves the native model's predictions on float32
    inputs unchanged and makes the ONNX export faithful at split points. Only numerical splits are used in
    this suite (no categorical features).
    """
    import lightgbm as lgb  # noqa: PLC0415  (lazy: TrainConfig is imported where lightgbm is not needed)

    text = booster.model_to_string()

    def snap(match: re.Match) -> str:
        values = np.array([float(v) for v in match.group(1).split()], dtype=np.float64)
        return "threshold=" + " ".join(repr(float(v)) for v in float32_thresholds(values))

    # The header's tree_sizes gives each tree's byte length, which snapping changes; without it LightGBM
    # parses the trees sequentially.
    text = _TREE_SIZES_LINE.sub("", _THRESHOLD_LINE.sub(snap, text))
    return lgb.Booster(model_str=text)


def train_lgbm(  # noqa: PLR0917
    X: np.ndarray, y: np.ndarray, feature_names: list[str], config: TrainConfig, seed: int, threads: int = 2
) -> lgb.Booster:
    """Train a binary LightGBM model on float32 features and return a float32-snapped booster.

    ``seed`` is an integer drawn from the run's SeedSequence; LightGBM's own seeds are all derived from it and
    ``deterministic=True`` makes the result independent of thread scheduling.
    """
    import lightgbm as lgb  # noqa: PLC0415  (lazy, as above)

    if X.dtype != np.float32:
        raise TypeError(f"X dtype (={X.dtype}) must be float32: the model is served on float32 inputs")
    params = {
        "objective": "binary",
        "num_leaves": config.num_leaves,
        "learning_rate": config.learning_rate,
        "min_data_in_leaf": config.min_data_in_leaf,
        "feature_fraction": config.feature_fraction,
        "bagging_fraction": config.bagging_fraction,
        "bagging_freq": 1,
        "seed": int(seed),
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": threads,
        "verbosity": -1,
        **config.extra,
    }
    data = lgb.Dataset(X, label=y, feature_name=list(feature_names), free_raw_data=True)
    booster = lgb.train(params, data, num_boost_round=config.n_trees)
    return snap_thresholds_to_float32(booster)
