"""Train the sepsis early-warning model on a development cohort, or load it from the registry."""

from __future__ import annotations

import numpy as np

from models.pipeline import build_model_lazy
from models.registry import Registry, RegistryEntry
from models.train import TrainConfig
from sim.domains.sepsis.physiology import FEATURES, Cohort

GENERATOR_SECTIONS = ("patients", "treatment")


def development_data(sc: dict, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hourly rows (X, y, patient id) of a development cohort from pilot-like hospitals, without drift.

    Label (PhysioNet 2019 convention): 1 from ``onset - label_lead_hours`` for septic patients. Septic
    patients contribute rows up to onset + 6 h; non-septic patients up to discharge (both capped).
    """
    m, h, p = sc["model"], sc["hospitals"], sc["patients"]
    rng = np.random.default_rng(seed)
    n_s, n_n = m["train_septic_patients"], m["train_nonseptic_patients"]
    n = n_s + n_n
    septic = np.r_[np.ones(n_s, bool), np.zeros(n_n, bool)]
    acuity_share = 0.5 * (h["high_acuity_share_min"] + h["high_acuity_share_max"])
    acuity = (rng.random(n) < acuity_share).astype(np.float32)
    mimic_rate = np.minimum(p["mimic_rate"] * np.where(acuity > 0, p["high_acuity_mimic_rr"], 1.0), 1.0)
    cohort = Cohort(n)
    cohort.admit(rng, 0.0, np.zeros(n, np.int32), septic, np.ones(n, np.float32), acuity, p,
                 {"mimic_rate": mimic_rate, "m0_logit": np.zeros(n)})
    Xs, ys, ids = [], [], []
    ones = np.ones(n)
    for t in range(m["train_max_hours"]):
        X, _ = cohort.step(rng, float(t), np.zeros((n, 5)), ones, p["lab_interval_hours"], np.zeros(n))
        a = cohort.a
        in_stay = np.where(septic, t <= a["onset"] + 6.0, t < a["leave"])
        if not in_stay.any():
            break
        Xs.append(X[in_stay])
        ys.append((septic & (t >= a["onset"] - m["label_lead_hours"]))[in_stay])
        ids.append(np.flatnonzero(in_stay))
    return np.concatenate(Xs), np.concatenate(ys).astype(np.int32), np.concatenate(ids)


def get_model(sc: dict, registry: Registry | None = None) -> RegistryEntry:
    """The registry entry for this scenario's model (trained on first use, then reused)."""
    m = sc["model"]
    cache = {k: sc[k] for k in GENERATOR_SECTIONS} | {"model": {k: v for k, v in m.items() if k not in (
        "threshold", "alert_suppress_hours", "threads", "source") and not k.startswith("oracle")},
        "acuity": [sc["hospitals"]["high_acuity_share_min"], sc["hospitals"]["high_acuity_share_max"]]}
    cache = {k: ({kk: vv for kk, vv in v.items() if kk != "source"} if isinstance(v, dict) else v)
             for k, v in cache.items()}
    cfg = TrainConfig(n_trees=m["n_trees"], num_leaves=m["num_leaves"], learning_rate=m["learning_rate"])
    return build_model_lazy("sepsis", lambda: development_data(sc, m["train_seed"]), FEATURES, cfg,
                            m["train_seed"], registry=registry, cache_config=cache)
