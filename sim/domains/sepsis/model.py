"""Train the sepsis early-warning model on a development cohort, or load it from the registry."""

from __future__ import annotations

import hashlib

import numpy as np

from models.pipeline import build_model_lazy
from models.registry import Registry, RegistryEntry
from models.scorer import OnnxScorer
from models.train import TrainConfig
from models.warmstart import WarmStartScorer, fit_correction, logit
from sim import retrain
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


# --- retraining in the simulation (used only when [retrain] policy is not "never") --------------------------
RESERVOIR_ROWS = 1_000_000      # bounded memory: ~75 MB; ~6 weeks of rows at 172 hospitals
# share of scored rows kept, about the development mix (weights become w / share)
KEEP_SEPTIC, KEEP_NONSEPTIC = 1.0, 1.0
PROBATION_POSITIVES = 100       # label-positive rows needed before a promoted version can be rolled back
#: warm start: a small correction on top of the development model (weeks of a few hospitals' rows)
WARM_CORRECTION = TrainConfig(n_trees=40, num_leaves=7, learning_rate=0.1, min_data_in_leaf=200)
TRAIN_ROWS_MAX = 400_000        # rows a retrain uses at most (septic rows plus the dev mix of others)


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
        self.septic = np.zeros(capacity, dtype=bool)
        self.cap, self.pos, self.full = capacity, 0, False

    def add(self, X: np.ndarray, y: np.ndarray, day: int, site: np.ndarray, w: np.ndarray,  # noqa: PLR0917
            septic: np.ndarray) -> None:
        k = len(y)
        if k == 0:
            return
        idx = (self.pos + np.arange(k)) % self.cap
        self.X[idx], self.y[idx], self.day[idx], self.site[idx], self.w[idx] = X, y, day, site, w
        self.septic[idx] = septic
        self.full |= self.pos + k >= self.cap
        self.pos = int((self.pos + k) % self.cap)

    def select(self, day_from: float, day_to: float, sites: np.ndarray) -> np.ndarray:
        """Indices of rows with ``day_from <= day < day_to`` at sites where ``sites`` (bool mask) is true."""
        n = self.cap if self.full else self.pos
        d = self.day[:n]
        return np.flatnonzero((d >= day_from) & (d < day_to) & sites[self.site[:n]])


def score_hist(scores: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted histogram of scores on the monitor's 200 fine bins of [0, 1] (for threshold re-fits)."""
    return np.bincount(np.minimum((scores * 200).astype(np.int64), 199), w, minlength=200)


def weighted_f1(y: np.ndarray, s: np.ndarray, w: np.ndarray, threshold: float) -> float:
    """Weighted F1 of alerting at ``threshold`` (rows weighted to the population); NaN without positives.

    Under the case-mix drift the ranking (AUROC) barely changes while false alerts grow, so the shadow test
    compares what clinicians see: precision and recall of the alerts at the operating threshold.
    """
    pos = y == 1
    if not pos.any():
        return float("nan")
    alert = s >= threshold
    tp, fp, fn = w[alert & pos].sum(), w[alert & ~pos].sum(), w[~alert & pos].sum()
    return float(2 * tp / (2 * tp + fp + fn))


def training_sample(y: np.ndarray, septic: np.ndarray, target_rate: float, rng: np.random.Generator,
                    max_rows: int = TRAIN_ROWS_MAX) -> np.ndarray:
    """Row indices in the development cohort's form: septic patients' rows plus others, at its label rate.

    Septic patients are enriched in the development cohort, so its label prevalence ``target_rate`` (from the
    model card) is far above the wards'. Taking every septic patient's row (up to ``max_rows``) and drawing
    other patients' rows uniformly until the label prevalence is ``target_rate`` reproduces that enrichment,
    so the retrained model's probabilities sit on the same scale and the alert threshold keeps its meaning.
    Within each group the reservoir's rows are exchangeable (equal weights), so uniform draws are unbiased.
    """
    sep, non = np.flatnonzero(septic), np.flatnonzero(~septic)
    if len(sep) > max_rows // 2:
        sep = np.sort(rng.choice(sep, max_rows // 2, replace=False))
    n_pos = int(y[sep].sum())
    n_non = max(0, int(n_pos / max(target_rate, 1e-6)) - len(sep))
    if n_non > len(non):  # not enough other rows: thin the septic ones instead
        keep = len(non) / n_non
        sep = np.sort(rng.choice(sep, int(len(sep) * keep), replace=False))
        n_non = len(non)
    pick = rng.choice(non, n_non, replace=False) if n_non < len(non) else non
    return np.sort(np.concatenate([sep, pick]))


def retrain_model(sc: dict, X: np.ndarray, y: np.ndarray, version: int, run_key: dict, *,
                  registry: Registry | None = None) -> RegistryEntry:
    """A new LightGBM -> ONNX sepsis model on in-simulation rows, registered as ``sepsis-retrained``.

    ``run_key`` (scenario hash, seed, version) and the data's hash key the registry entry.
    """
    m = sc["model"]
    cfg = TrainConfig(n_trees=m["n_trees"], num_leaves=m["num_leaves"], learning_rate=m["learning_rate"])
    digest = hashlib.sha256(X.tobytes() + y.tobytes()).hexdigest()
    return build_model_lazy("sepsis-retrained", lambda: (X, y, None), FEATURES, cfg,
                            m["train_seed"] + version, registry=registry,
                            cache_config=run_key | {"version": version, "data": digest})


class SiteModels:
    """Per-site model versions, the row reservoir and the :class:`sim.retrain.Retrainer` hooks.

    Version 1 is the development model at every site. A retrain (``train``) uses the labelled reservoir rows
    of its *cohort* (sites with a drift alarm; every live site under the scheduled / performance policies),
    and on promotion (``activate``) the cohort's sites score with the new version. Shadow evaluation scores
    the same labelled reservoir rows of the cohort with the live versions and the challenger (weighted F1 of
    alerting at the scenario's threshold).
    """

    def __init__(self, ctx, care, scorer, registry: Registry | None = None):
        self.ctx, self.care, self.registry = ctx, care, registry
        self.sc = ctx.scenario.to_dict()
        self.cfg = ctx.scenario.section("retrain")
        n = ctx.n_sites
        self.scorers = {1: scorer}
        self.site_version = np.ones(n, dtype=np.int32)
        self.alarmed = np.zeros(n, dtype=bool)
        self.reservoir = Reservoir()
        self.rng = ctx.streams.generator("sepsis.retrain")
        self.target_rate = float(ctx.extra.get("model_card", {}).get("training_positive_rate", 0.1))
        self.cohorts: dict[int, np.ndarray] = {}
        self.shadow_from = float("inf")
        self.replaced = self.site_version.copy()  # per-site versions before the last promotion
        self.checked = np.zeros(n, dtype=np.int32)  # newest version each site was checked against
        self.rt = retrain.Retrainer(dict(self.cfg), self, initial_model=1, log=self._log)
        self.rt.deployed(float(ctx.scenario.get("rollout.first_go_live_day")))

    # --- scoring and data ----------------------------------------------------------------------------------
    def predict(self, X: np.ndarray, site: np.ndarray, versions: np.ndarray | None = None) -> np.ndarray:
        """Scores of each row's site's version (``versions``: per-site versions; default the live ones)."""
        ver = (self.site_version if versions is None else versions)[site]
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
        self.reservoir.add(X[r], y, int(t // 24), a["site"][r], a["weight"][r] / keep_p[keep], septic[keep])

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
        take = idx[training_sample(res.y[idx], res.septic[idx], self.target_rate, self.rng)] \
            if len(idx) else idx
        if len(take) < 200 or res.y[take].min() == res.y[take].max():
            self.scorers[version] = self.scorers[self.rt.live.version]  # too little data: the live one
        else:
            run_key = {"scenario": self.ctx.scenario.hash, "seed": self.ctx.seed}
            X, y = res.X[take], res.y[take].astype(np.int32)
            threads = self.sc["model"]["threads"]
            if self.cfg["warm_start"]:  # a correction boosted from the development model's log-odds
                base = self.scorers[1]
                digest = hashlib.sha256(X.tobytes() + y.tobytes()).hexdigest()
                entry = fit_correction("sepsis-retrained-ws", X, y, np.arange(len(y)) % 101,
                                       logit(base.predict_proba(X)), FEATURES, WARM_CORRECTION,
                                       self.sc["model"]["train_seed"] + version, self.registry,
                                       run_key | {"version": version, "data": digest})
                self.scorers[version] = WarmStartScorer(base, OnnxScorer(entry.onnx_path, threads=threads))
            else:
                entry = retrain_model(self.sc, X, y, version, run_key, registry=self.registry)
                self.scorers[version] = OnnxScorer(entry.onnx_path, threads=threads)
        self.cohorts[version] = cohort
        self.ctx.events.log(self.ctx.env.now, "retrain_data", detail=f"version {version}: {len(take)} rows "
                            f"(label rate {res.y[take].mean() if len(take) else 0:.3f}) "
                            f"from {int(cohort.sum())} sites, days {data_from_day:g}-{data_to_day:g}",
                            value=float(len(take)))
        return version

    def activate(self, model: int, version: int) -> None:
        """Make ``version`` live at its cohort (promotion) or at the sites of newer versions (rollback)."""
        newer = self.site_version > version
        sites = newer if newer.any() else self.cohorts.get(version, newer)
        if not newer.any():
            self.replaced = self.site_version.copy()
        self._switch(sites, version)

    def _switch(self, sites: np.ndarray, version: int) -> None:
        """Score ``sites`` (bool mask) with ``version`` from now on; rebase their monitor reference."""
        self.site_version[sites] = version
        # a new version is trained to the development label rate, so the scenario's threshold means the
        # same for it; thresholds re-fitted for the old version's scores no longer apply. Under the
        # `recalibrate` reaction the new version's threshold is re-fitted at once on the sites' recent
        # non-septic rows (the same rule as after an alarm)
        self.care.thr[sites] = np.float32(self.sc["model"]["threshold"])
        self.care.neg_hist[sites] = 0.0
        mon = self.ctx.monitor
        if mon is not None and mon.cfg["on_alarm"] == "recalibrate" and sites.any():
            day = self.ctx.env.now / 24.0
            idx = self.reservoir.select(day - mon.cfg["window_days"], day + 1, sites)
            idx = idx[~self.reservoir.septic[idx]]
            if len(idx):
                s = self.scorers[version].predict_proba(self.reservoir.X[idx])
                thr = self.care.matched_threshold(score_hist(s, self.reservoir.w[idx]))
                if thr is not None:
                    self.care.thr[sites] = thr
        if mon is not None and sites.any():
            day = self.ctx.env.now / 24.0
            idx = self.reservoir.select(day - mon.cfg["window_days"], day + 1, sites)
            if len(idx):
                s = self.scorers[version].predict_proba(self.reservoir.X[idx])
                mon.rebase(np.flatnonzero(sites), score_hist(s, self.reservoir.w[idx]))

    def _log(self, ev) -> None:
        if ev.kind == "shadow_start":
            self.shadow_from = ev.day
        self.ctx.events.log(ev.day * 24.0, f"retrain_{ev.kind}", detail=ev.detail, value=float(ev.version))

    # --- the daily evaluation ------------------------------------------------------------------------------
    def _metric(self, day_from: float, day_to: float, sites: np.ndarray, version: int | np.ndarray | None,
                min_positives: int = 5) -> tuple[float, float]:
        """F1 (and rows) of ``version`` on labelled rows of days [from, to]: one version for all, per-site
        versions (an array), or None: each site's live version.

        NaN with fewer than 200 rows or ``min_positives`` label-positive rows (too little to judge).
        """
        idx = self.reservoir.select(day_from, day_to + 1, sites)
        if len(idx) < 200 or self.reservoir.y[idx].sum() < min_positives:
            return float("nan"), 0.0
        X, y, w = self.reservoir.X[idx], self.reservoir.y[idx], self.reservoir.w[idx]
        if version is None or isinstance(version, np.ndarray):
            s = self.predict(X, self.reservoir.site[idx], version)
        else:
            s = self.scorers[version].predict_proba(X)
        thr = self.sc["model"]["threshold"]
        if self.cfg["compare_at"] == "alert_budget":  # each model at its own pilot-matched alert load
            neg = ~self.reservoir.septic[idx]
            fitted = self.care.matched_threshold(score_hist(s[neg], w[neg]))
            thr = thr if fitted is None else fitted
        return weighted_f1(y, s, w, thr), float(len(idx))

    def daily(self):
        """SimPy process: shadow metrics, probation and performance feeds, re-trigger on uncovered alarms."""
        env, rt, delay = self.ctx.env, self.rt, self.cfg["label_delay_days"]
        while True:
            yield env.timeout(24.0)
            day = env.now / 24.0
            labelled = int(day - delay) - 1  # the last whole day whose labels are known
            if rt.state == "shadow" and labelled >= self.shadow_from:
                sites = self.cohorts[rt.challenger.version]
                live, n = self._metric(labelled, labelled, sites, None)
                chal, _ = self._metric(labelled, labelled, sites, rt.challenger.version)
                rt.record_shadow(live, chal, n)
            since = rt.live.live_from_day
            probation = rt.live.version > 1 and day - since <= self.cfg["probation_days"]
            if probation:  # labelled rows since the promotion at its sites: new and replaced versions
                cohort = self.cohorts[rt.live.version]
                f1 = self._metric(since, labelled, cohort, None, PROBATION_POSITIVES)[0]
                f1_old = self._metric(since, labelled, cohort, self.replaced, PROBATION_POSITIVES)[0]
                rt.probation(day, f1, f1_old)
            elif self.cfg["policy"] == "on_performance":
                rt.performance(day, self._metric(labelled - 6, labelled, self.ctx.live, None)[0])
            if self.cfg["extend_to_alarmed"] and rt.live.version > 1 and self.ctx.monitor is not None:
                self._extend(day, labelled)
            uncovered = self.alarmed & self.ctx.monitor.alarm_open & (self.site_version == 1) \
                if self.ctx.monitor is not None else np.zeros(0, bool)
            if self.cfg["policy"] == "on_drift" and uncovered.any() and rt.state == "idle":
                rt.drift_alarm(day, f"open alarms at {int(uncovered.sum())} sites on version 1")

    def _extend(self, day: float, labelled: int) -> None:
        """Switch alarmed sites on an older version to the live retrained one when it does at least as well
        on each site's own labelled rows of the monitor's window (checked once per site and version)."""
        live = self.rt.live.version
        # silent sites (monitor.silent_next_wave) are checked too: they go live on the better version
        watch = (self.alarmed & self.ctx.monitor.alarm_open) | self.ctx.silent
        cand = watch & (self.site_version < live) & (self.checked < live)
        window = self.ctx.monitor.cfg["window_days"]
        for s in np.flatnonzero(cand):
            mask = np.zeros_like(cand)
            mask[s] = True
            new, n = self._metric(labelled - window + 1, labelled, mask, live)
            old, _ = self._metric(labelled - window + 1, labelled, mask, None)
            if np.isnan(new) or np.isnan(old):
                continue  # too few labelled rows yet: try again tomorrow
            self.checked[s] = live
            verdict = "switched" if new >= old else "kept"
            if new >= old:
                self._switch(mask, live)
                self.cohorts[live] = self.cohorts[live] | mask
            self.ctx.events.log(day * 24.0, "retrain_extended", site=self.ctx.site_names[s],
                                detail=f"version {live} F1 {new:.4g} vs {old:.4g} on {n:.0f} labelled rows: "
                                       f"{verdict}", value=float(live if new >= old else 0))
