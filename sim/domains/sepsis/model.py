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


# --- retraining in the simulation (used only when [retrain] policy is not "never") ---------------------------
RESERVOIR_ROWS = 400_000        # bounded memory: ~22 MB of float32 features
KEEP_SEPTIC, KEEP_NONSEPTIC = 0.25, 0.10  # share of scored rows kept (weights become weight / share)
TRAIN_ROWS_MAX = 120_000        # rows a retrain uses (all label-positive rows, then weighted negatives)


class Reservoir:
    """Bounded ring of sampled scored rows with labels: features, label, day, site and weight.

    Rows are sampled as they are scored (septic patients' rows at ``KEEP_SEPTIC``, others at
    ``KEEP_NONSEPTIC``), each carrying ``weight / keep`` so weighted sums stay unbiased. Labels follow the
    development cohort (1 from ``onset - label_lead_hours``; septic rows only up to onset + 6 h), and are only
    *used* once ``label_delay_days`` have passed (the caller selects by day). The oldest rows are overwritten.
    """

    def __init__(self, capacity: int = RESERVOIR_ROWS, n_features: int = len(FEATURES)):
        self.X = np.zeros((capacity, n_features), dtype=np.float32)
        self.y = np.zeros(capacity, dtype=np.int8)
        self.day = np.full(capacity, -1, dtype=np.int32)
        self.site = np.zeros(capacity, dtype=np.int32)
        self.w = np.zeros(capacity, dtype=np.float64)
        self.cap, self.pos, self.full = capacity, 0, False

    def add(self, X: np.ndarray, y: np.ndarray, day: int, site: np.ndarray, w: np.ndarray) -> None:
        k = len(y)
        if k == 0:
            return
        idx = (self.pos + np.arange(k)) % self.cap
        self.X[idx], self.y[idx], self.day[idx], self.site[idx], self.w[idx] = X, y, day, site, w
        self.full |= self.pos + k >= self.cap
        self.pos = int((self.pos + k) % self.cap)

    def select(self, day_from: float, day_to: float, sites: np.ndarray) -> np.ndarray:
        """Indices of rows with ``day_from <= day < day_to`` at sites where ``sites`` (bool mask) is true."""
        n = self.cap if self.full else self.pos
        d = self.day[:n]
        return np.flatnonzero((d >= day_from) & (d < day_to) & sites[self.site[:n]])


def weighted_auroc(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> float:
    """Weighted area under the ROC curve; NaN unless both classes are present."""
    from sklearn.metrics import roc_auc_score
    if y.min() == y.max():
        return float("nan")
    return float(roc_auc_score(y, s, sample_weight=w))


def training_sample(y: np.ndarray, w: np.ndarray, target_rate: float, rng: np.random.Generator,
                    max_rows: int = TRAIN_ROWS_MAX) -> np.ndarray:
    """Row indices with label prevalence ``target_rate`` (the development cohort's), negatives by weight.

    All positives are kept (up to ``max_rows * target_rate``); negatives are drawn without replacement with
    probability proportional to their weight (Efraimidis-Spirakis keys), so the negatives represent the
    population, and the enrichment matches the original model's (its threshold keeps its meaning).
    """
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    n_pos = min(len(pos), int(max_rows * target_rate))
    pos = rng.choice(pos, n_pos, replace=False) if n_pos < len(pos) else pos
    n_neg = min(len(neg), int(round(n_pos * (1 - target_rate) / max(target_rate, 1e-6))))
    keys = np.log(rng.random(len(neg))) / np.maximum(w[neg], 1e-12)
    neg = neg[np.argsort(-keys)[:n_neg]]
    return np.sort(np.concatenate([pos, neg]))


def retrain_model(sc: dict, X: np.ndarray, y: np.ndarray, version: int, run_key: dict,
                  registry: Registry | None = None) -> RegistryEntry:
    """A new LightGBM -> ONNX sepsis model on in-simulation rows, registered as ``sepsis-retrained``.

    ``run_key`` (scenario hash, seed, version) and the data's hash key the registry entry.
    """
    import hashlib
    m = sc["model"]
    cfg = TrainConfig(n_trees=m["n_trees"], num_leaves=m["num_leaves"], learning_rate=m["learning_rate"])
    digest = hashlib.sha256(X.tobytes() + y.tobytes()).hexdigest()
    return build_model_lazy("sepsis-retrained", lambda: (X, y, None), FEATURES, cfg, m["train_seed"] + version,
                            registry=registry, cache_config=run_key | {"version": version, "data": digest})


class SiteModels:
    """Per-site model versions, the row reservoir and the :class:`sim.retrain.Retrainer` hooks.

    Version 1 is the development model at every site. A retrain (``train``) uses the labelled reservoir rows
    of its *cohort* (sites with a drift alarm; every live site under the scheduled / performance policies),
    and on promotion (``activate``) the cohort's sites score with the new version. Shadow evaluation scores
    the same labelled reservoir rows of the cohort with the live versions and the challenger (weighted AUROC).
    """

    def __init__(self, ctx, care, scorer, registry: Registry | None = None):
        from models.scorer import OnnxScorer
        from sim import retrain
        self._scorer_cls = OnnxScorer
        self.ctx, self.care, self.registry = ctx, care, registry
        self.sc = ctx.scenario.to_dict()
        self.cfg = ctx.scenario.section("retrain")
        n = ctx.n_sites
        self.scorers = {1: scorer}
        self.site_version = np.ones(n, dtype=np.int32)
        self.alarmed = np.zeros(n, dtype=bool)
        self.reservoir = Reservoir()
        self.rng = ctx.streams.generator("sepsis.retrain")
        card = ctx.extra.get("model_card", {})
        self.target_rate = float(card.get("training_positive_rate", 0.1))
        self.cohorts: dict[int, np.ndarray] = {}
        self.shadow_from = float("inf")
        self.rt = retrain.Retrainer(dict(self.cfg), self, initial_model=1, log=self._log)
        self.rt.deployed(float(ctx.scenario.get("rollout.first_go_live_day")))

    # --- scoring and data ----------------------------------------------------------------------------------
    def predict(self, X: np.ndarray, site: np.ndarray) -> np.ndarray:
        ver = self.site_version[site]
        if (ver == 1).all():
            return self.scorers[1].predict_proba(X)
        out = np.empty(len(X), dtype=np.float32)
        for v in np.unique(ver):
            k = ver == v
            out[k] = self.scorers[int(v)].predict_proba(X[k])
        return out

    def collect(self, t: float, X: np.ndarray, rows: np.ndarray) -> None:
        """Sample scored rows (``rows`` of the cohort, ``X`` the hour's features) into the reservoir."""
        a, lead = self.care.cohort.a, self.sc["model"]["label_lead_hours"]
        septic = a["septic"][rows]
        in_dev = ~septic | (t <= a["onset"][rows] + 6.0)
        keep_p = np.where(septic, KEEP_SEPTIC, KEEP_NONSEPTIC)
        keep = in_dev & (self.rng.random(len(rows)) < keep_p)
        r = rows[keep]
        y = (septic[keep] & (t >= a["onset"][r] - lead)).astype(np.int8)
        self.reservoir.add(X[r], y, int(t // 24), a["site"][r], a["weight"][r] / keep_p[keep])

    # --- news from the monitor ---------------------------------------------------------------------------
    def drift_alarm(self, site: int, day: float, detail: str) -> None:
        self.alarmed[site] = True
        self.rt.drift_alarm(day, f"at {self.ctx.site_names[site]}: {detail}")

    # --- Retrainer hooks ---------------------------------------------------------------------------------
    def _cohort(self) -> np.ndarray:
        return self.alarmed.copy() if self.cfg["policy"] == "on_drift" else self.ctx.live.copy()

    def train(self, data_from_day: float, data_to_day: float, version: int) -> int:
        """Train version ``version`` on the cohort's labelled rows of ``[from, to)``; returns the version."""
        cohort = self._cohort()
        idx = self.reservoir.select(data_from_day, data_to_day, cohort)
        res = self.reservoir
        take = idx[training_sample(res.y[idx], res.w[idx], self.target_rate, self.rng)] if len(idx) else idx
        if len(take) < 200 or res.y[take].min() == res.y[take].max():
            self.scorers[version] = self.scorers[self.rt.live.version]  # too little data: a copy of the live one
        else:
            run_key = {"scenario": self.ctx.scenario.hash, "seed": self.ctx.seed}
            entry = retrain_model(self.sc, res.X[take], res.y[take].astype(np.int32), version, run_key,
                                  self.registry)
            self.scorers[version] = self._scorer_cls(entry.onnx_path, threads=self.sc["model"]["threads"])
        self.cohorts[version] = cohort
        self.ctx.events.log(self.ctx.env.now, "retrain_data", detail=f"version {version}: {len(take)} rows "
                            f"from {int(cohort.sum())} sites, days {data_from_day:g}-{data_to_day:g}",
                            value=float(len(take)))
        return version

    def activate(self, model: int, version: int) -> None:
        """Make ``version`` live at its cohort (promotion) or at the sites of newer versions (rollback)."""
        newer = self.site_version > version
        sites = newer if newer.any() and version < self.site_version.max() else self.cohorts.get(version, newer)
        self.site_version[sites] = version
        mon = self.ctx.monitor
        if mon is not None and sites.any():
            day = self.ctx.env.now / 24.0
            idx = self.reservoir.select(day - mon.cfg["window_days"], day + 1, sites)
            if len(idx):
                s = self.scorers[version].predict_proba(self.reservoir.X[idx])
                b = np.minimum((s * 200).astype(np.int64), 199)
                mon.rebase(np.flatnonzero(sites), np.bincount(b, self.reservoir.w[idx], minlength=200))

    def _log(self, ev) -> None:
        if ev.kind == "shadow_start":
            self.shadow_from = ev.day
        self.ctx.events.log(ev.day * 24.0, f"retrain_{ev.kind}", detail=ev.detail, value=float(ev.version))

    # --- the daily evaluation ------------------------------------------------------------------------------
    def _auroc(self, day: int, sites: np.ndarray, version: int | None) -> tuple[float, float]:
        """AUROC (and rows) of ``version`` (None: each site's live version) on ``day``'s labelled rows."""
        idx = self.reservoir.select(day, day + 1, sites)
        if len(idx) < 50:
            return float("nan"), 0.0
        X, y, w = self.reservoir.X[idx], self.reservoir.y[idx], self.reservoir.w[idx]
        s = self.predict(X, self.reservoir.site[idx]) if version is None else self.scorers[version].predict_proba(X)
        return weighted_auroc(y, s, w), float(len(idx))

    def daily(self):
        """SimPy process: shadow metrics, probation and performance feeds, re-trigger on uncovered alarms."""
        env, rt, delay = self.ctx.env, self.rt, self.cfg["label_delay_days"]
        while True:
            yield env.timeout(24.0)
            day = env.now / 24.0
            labelled = int(day - delay) - 1  # the last whole day whose labels are known
            if rt.state == "shadow" and labelled >= self.shadow_from:
                sites = self.cohorts[rt.challenger.version]
                live, n = self._auroc(labelled, sites, None)
                chal, _ = self._auroc(labelled, sites, rt.challenger.version)
                rt.record_shadow(live, chal, n)
            probation = rt.live.version > 1 and day - rt.live.live_from_day <= self.cfg["probation_days"]
            if probation or self.cfg["policy"] == "on_performance":
                sites = self.cohorts.get(rt.live.version, self.ctx.live) if probation else self.ctx.live
                rt.performance(day, self._auroc(labelled, sites, None)[0])
            uncovered = self.alarmed & self.ctx.monitor.alarm_open & (self.site_version == 1) \
                if self.ctx.monitor is not None else np.zeros(0, bool)
            if self.cfg["policy"] == "on_drift" and uncovered.any() and rt.state == "idle":
                rt.drift_alarm(day, f"open alarms at {int(uncovered.sum())} sites on version 1")
