"""The failure-within-horizon model (LightGBM -> ONNX, via the registry) and a RUL regressor (PHM08 score).

Training data come from the same generator the simulation uses (``degradation.py``): a development fleet of
one machine type runs to failure (each failed component is replaced at once); every unit-day after a warm-up
is a row of windowed sensor features, labelled 1 if a degradation failure follows within ``horizon_days``.
Negatives are subsampled (``train_negative_keep``) to keep training fast; the alert threshold is a scenario
parameter, so the subsampling only shifts which threshold gives which alert rate.
"""

from __future__ import annotations

import json
import os
import tempfile

import lightgbm as lgb
import numpy as np

from models.pipeline import build_model_lazy
from models.registry import Registry, RegistryEntry, config_key
from models.train import TrainConfig
from sim.domains.maintenance.degradation import Lives, SensorState, TypeParams, duty_profiles, feature_names
from sim.domains.maintenance.metrics import rul_scores
from sim.schema import Rule

MODEL = {
    "kind": Rule(
        "str",
        "onnx",
        choices=("onnx", "oracle"),
        doc="onnx: LightGBM exported to ONNX, scored by onnxruntime; oracle: perfect detection (tests)",
    ),
    "threshold": Rule(
        "float", 0.5, min=0, max=1, doc="alert when the daily failure probability reaches this"
    ),
    "horizon_days": Rule("int", 10, min=1, max=365, doc="label: degradation failure within this many days"),
    "alert_suppress_days": Rule("int", 14, min=0, max=365, doc="no repeat alert for a unit within this"),
    "train_seed": Rule("int", 2019, min=0),
    "train_units": Rule("int", 1500, min=20),
    "train_days": Rule("int", 600, min=60, max=5000),
    "train_warmup_days": Rule("int", 40, min=0, max=1000),
    "train_negative_keep": Rule("float", 0.1, min=0.001, max=1, doc="share of negative rows kept"),
    "n_trees": Rule("int", 60, min=1, max=5000),
    "num_leaves": Rule("int", 15, min=2, max=1024),
    "learning_rate": Rule("float", 0.1, min=1e-4, max=1),
    "rul_cap_days": Rule(
        "float", 60.0, min=1, doc="RUL target capped here (piecewise-linear, as for C-MAPSS)"
    ),
    "threads": Rule("int", 1, min=1, max=64, doc="onnxruntime intra-op threads"),
    "oracle_lead_days": Rule("float", 5.0, min=0, max=365, doc="oracle: alert this many days before failure"),
    "oracle_false_alert_rate": Rule("float", 0.0, min=0, max=1, doc="oracle: false alerts per unit-day"),
    "source": Rule("str", ""),
}


def development_data(
    deg: dict, types: list[dict], type_index: int, m: dict, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows ``(X float32, y int32, unit id, true RUL days)`` of a development fleet of one machine type."""
    rng = np.random.default_rng(seed)
    n, days, horizon = m["train_units"], m["train_days"], m["horizon_days"]
    tp = TypeParams(deg, types)
    unit_type = np.full(n, type_index, dtype=np.int64)
    lives = Lives(deg, tp, unit_type, 64, rng)
    sensors = SensorState(deg, tp, unit_type, duty_profiles(n, deg["conditions"], 1.0, rng), rng)
    sensors.set_reference_type(np.arange(n), type_index)
    units = np.arange(n)
    k = np.zeros(n, dtype=np.int64)
    d0, mode, length = lives.get(units, k)
    start = -lives.first_used * length
    Xs, ys, ids, ruls = [], [], [], []
    for t in range(days):
        ended = t >= start + length
        if ended.any():
            k[ended] += 1
            start[ended] = t
            d0[ended], mode[ended], length[ended] = lives.get(units[ended], k[ended])
        d = lives.damage(d0, length, t - start)
        sensors.step(rng, units, d, mode)
        if t < m["train_warmup_days"]:
            continue
        rul = start + length - t
        y = rul <= horizon
        keep = y | (rng.random(n) < m["train_negative_keep"])
        Xs.append(sensors.features(units[keep]))
        ys.append(y[keep])
        ids.append(units[keep])
        ruls.append(rul[keep])
    return (
        np.concatenate(Xs),
        np.concatenate(ys).astype(np.int32),
        np.concatenate(ids),
        np.concatenate(ruls),
    )


def _cache_config(deg: dict, types: list[dict], type_index: int, m: dict) -> dict:
    keep = {
        k: v
        for k, v in m.items()
        if k not in ("threshold", "alert_suppress_days", "threads", "source", "kind")
        and not k.startswith("oracle")
    }
    return {
        "degradation": {k: v for k, v in deg.items() if k not in ("source", "drift_sensors")},
        "type": types[type_index],
        "types": types,
        "model": keep,
    }


def get_classifier(
    deg: dict, types: list[dict], type_index: int, m: dict, name: str, *, registry: Registry | None = None
) -> RegistryEntry:
    """Registry entry of the failure-within-horizon classifier for machine type ``type_index``."""
    cfg = TrainConfig(n_trees=m["n_trees"], num_leaves=m["num_leaves"], learning_rate=m["learning_rate"])
    seed = m["train_seed"] + 7919 * type_index

    def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        X, y, ids, _ = development_data(deg, types, type_index, m, seed)
        return X, y, ids

    return build_model_lazy(
        name,
        data,
        feature_names(deg["sensors"]),
        cfg,
        seed,
        registry=registry,
        cache_config=_cache_config(deg, types, type_index, m),
    )


def rul_evaluation(
    deg: dict, types: list[dict], type_index: int, m: dict, name: str, *, registry: Registry | None = None
) -> dict:
    """Train a LightGBM RUL regressor on development data and score it on a held-out fleet (cached on disk).

    Target: ``min(RUL, rul_cap_days)``. Test rows: one random day per held-out unit among the days with true
    RUL <= ``rul_cap_days`` (as C-MAPSS test trajectories end before failure). Returns RMSE and the PHM08
    score (sum and mean over test units, d = predicted - true RUL in days).
    """
    registry = registry or Registry()
    cache = _cache_config(deg, types, type_index, m)
    path = registry.cache_path(f"{name}_rul", config_key(cache))
    if path.exists():
        return json.loads(path.read_text())
    seed = m["train_seed"] + 7919 * type_index
    X, _, _, rul = development_data(deg, types, type_index, m, seed)
    cap = m["rul_cap_days"]
    params = {
        "objective": "regression",
        "num_leaves": m["num_leaves"],
        "learning_rate": m["learning_rate"],
        "min_data_in_leaf": 50,
        "seed": int(seed),
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 2,
        "verbosity": -1,
    }
    booster = lgb.train(params, lgb.Dataset(X, label=np.minimum(rul, cap)), num_boost_round=m["n_trees"])
    Xt, _, ids, rul_t = development_data(deg, types, type_index, m | {"train_negative_keep": 0.05}, seed + 1)
    rng = np.random.default_rng(seed + 2)
    near = rng.permutation(np.flatnonzero(rul_t <= cap))
    pick = near[np.unique(ids[near], return_index=True)[1]]  # one random qualifying row per unit
    out = rul_scores(booster.predict(Xt[pick]), rul_t[pick]) | {
        "n_test_units": len(pick),
        "rul_cap_days": cap,
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(out, f)
    os.replace(tmp, path)
    return out
