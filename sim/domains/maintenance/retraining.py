"""Retraining in the simulation for the maintenance domains (used only when ``[retrain] policy != "never"``).

One :class:`sim.retrain.Retrainer` per model *family* (the fleet has one model; a plant has the lighthouse
model and one local model per machine type, and a retrain must not mix machine types). What it does:

- **Data.** Every scored unit-day row (windowed sensor features, unit, site, the unit's life index) is kept
  for the days a retrain can use (``RowLog``). A row's label is what the operator learns later: the part's
  life ended (a wear-out breakdown, or a replacement at a visit that found the fault) within
  ``model.horizon_days`` of the row's day; it is known once the horizon has passed (``label_delay_days``
  should be ``horizon_days + 1``). Sudden failures do not end a life and are not positives, as in the
  development data.
- **Trigger and cohort.** A monitor alarm at a site marks it and triggers its family's retrainer
  (``on_drift``). The cohort of a retrain is the family's marked sites; it trains on their labelled rows of
  ``[start - label_delay_days - train_window_days, start - label_delay_days)``: every positive row and the
  negative rows at ``model.train_negative_keep`` (the development data's sampling, so the alert threshold
  keeps its meaning), split by unit into training and validation rows, LightGBM -> ONNX with parity check and
  model card through ``models.pipeline.build_model_lazy`` (registry name ``<model>-retrained``, keyed by
  scenario hash, seed, family, version and a hash of the data), scored with onnxruntime.
- **Shadow.** The challenger and the cohort's live model score the same rows: the cohort's rows logged since
  the challenger's training cutoff (never in its training data), each day's as their labels arrive. Metric:
  F1 of alerting at the site's threshold. Promotion if the challenger is at least as good (``min_gain``).
- **Live.** A promoted version scores at its cohort's sites; their monitor reference is rebased on its
  scores of their last ``window_days`` of rows. During ``probation_days`` the promoted and the replaced
  version are compared on the same labelled rows since the promotion; worse by ``rollback_margin``: rollback.
- Too few label-positive rows (``MIN_POSITIVES``): no new model; the shadow has nothing to test: rejected.
- Marked sites with an open alarm that still run the family's first version re-trigger when it is idle.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from models.pipeline import build_model_lazy
from models.registry import Registry
from models.scorer import OnnxScorer
from models.train import TrainConfig
from models.warmstart import WarmStartScorer, fit_correction, logit
from sim import retrain
from sim.monitor import FINE_BINS

LIFE_SLOTS = 64         # life indices kept per unit for labels (a unit lives far fewer lives in a window)
MIN_POSITIVES = 50      # label-positive rows a retrain needs, else the challenger is the live model
SHADOW_MIN_ROWS = 200   # rows needed before a day's shadow comparison counts
PROBATION_POSITIVES = 30
MATCH_DAYS = 7          # latest days of rows on which a challenger's threshold is matched
WARM_START = True       # continue boosting from the live model (False: a new model from scratch)
#: the correction booster is small and coarse: weeks of post-change rows hold few independent failing lives
#: (one unit's days are nearly copies of each other), so it learns the shift, not the units
CORRECTION = TrainConfig(n_trees=30, num_leaves=4, learning_rate=0.1, min_data_in_leaf=400)
NEGATIVE_KEEP = 1.0     # share of label-negative rows a retrain uses (its threshold is matched, see below)


def f1_at(y: np.ndarray, s: np.ndarray, thr: np.ndarray) -> tuple[float, float]:
    """(F1 of alerting at ``thr``, weight = positives + alerts); NaN without positives."""
    pos, alert = y == 1, s >= thr
    tp, fp, fn = float((alert & pos).sum()), float((alert & ~pos).sum()), float((~alert & pos).sum())
    if tp + fn == 0:
        return float("nan"), 0.0
    return 2 * tp / (2 * tp + fp + fn), tp + fp + fn


class RowLog:
    """Per-day blocks of scored rows: features, unit, site, life index; days older than ``keep_days`` go."""

    def __init__(self, keep_days: int):
        self.keep = int(keep_days)
        self.blocks: dict[int, tuple[np.ndarray, ...]] = {}

    def add(self, day: int, X: np.ndarray, units: np.ndarray, sites: np.ndarray, life: np.ndarray) -> None:
        self.blocks[day] = (X, units.astype(np.int32), sites.astype(np.int32), life.astype(np.int32))
        for d in [d for d in self.blocks if d < day - self.keep]:
            del self.blocks[d]

    def get(self, day_from: float, day_to: float, sites: np.ndarray) -> tuple[np.ndarray, ...]:
        """(X, unit, site, life, day) of rows with ``day_from <= day < day_to`` at sites where ``sites``."""
        parts = []
        for d in sorted(self.blocks):
            if day_from <= d < day_to:
                X, u, s, k = self.blocks[d]
                sel = sites[s]
                if sel.any():
                    parts.append((X[sel], u[sel], s[sel], k[sel], np.full(int(sel.sum()), d, np.int32)))
        if not parts:
            n_feat = next(iter(self.blocks.values()))[0].shape[1] if self.blocks else 0
            e = np.zeros(0, np.int32)
            return np.zeros((0, n_feat), np.float32), e, e, e, e
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(5))


class _FamilyHooks:
    """The :class:`sim.retrain.Hooks` of one model family."""

    def __init__(self, owner: MaintenanceRetraining, family: int):
        self.owner, self.family = owner, family

    def train(self, data_from_day: float, data_to_day: float, version: int) -> int:
        return self.owner.train(self.family, data_from_day, data_to_day, version)

    def activate(self, model: int, version: int) -> None:
        self.owner.activate(self.family, model, version)


class MaintenanceRetraining:
    """Row log, labels, per-family retrainers and per-site model versions (see the module docstring)."""

    def __init__(self, ctx, world, model_name: str, feature_names: list[str], registry: Registry | None):
        self.ctx, self.world, self.registry = ctx, world, registry
        self.name, self.features = model_name, list(feature_names)
        self.cfg = dict(ctx.scenario.section("retrain"))
        self.m = ctx.scenario.section("model")
        self.horizon = self.m["horizon_days"]
        c = self.cfg
        keep = c["train_window_days"] + c["label_delay_days"] + c["collection_days"] + c["training_days"] \
            + c["shadow_days"] + c["probation_days"] + self.horizon + 2
        self.rows = RowLog(math.ceil(keep))
        self.life_end = np.full((world.n, LIFE_SLOTS), np.inf)
        self.rng = ctx.streams.generator("maint.retrain")
        n_fam = len(world.scorers)
        self.site_version = np.ones(ctx.n_sites, dtype=np.int64)
        self.alarmed = np.zeros(ctx.n_sites, dtype=bool)
        self.scorer_of: dict[tuple[int, int], int] = {(f, 1): f for f in range(n_fam)}
        self.cohorts: dict[tuple[int, int], np.ndarray] = {}
        self.threshold_of: dict[int, float] = {f: float(self.m["threshold"]) for f in range(n_fam)}
        self.shadow_next: dict[int, float] = {}
        self.no_model: set[int] = set()
        self.rts = [
            retrain.Retrainer(dict(c), _FamilyHooks(self, f), initial_model=f, log=self._logger(f))
            for f in range(n_fam)
        ]
        for rt in self.rts:
            rt.deployed(float(ctx.scenario.get("rollout.first_go_live_day")))

    # --- what the engine reads ---------------------------------------------------------------------------
    @property
    def retrains(self) -> int:
        return sum(rt.retrains for rt in self.rts)

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for rt in self.rts:
            for k, v in rt.summary().items():
                if k != "live_version":
                    out[k] = out.get(k, 0.0) + float(v)
        out["sites_on_retrained_model"] = float((self.site_version > 1).sum())
        return out

    # --- fed by the world --------------------------------------------------------------------------------
    def log_rows(self, day: int, rows: np.ndarray, X: np.ndarray) -> None:
        w = self.world
        self.rows.add(day, X, rows, w.site[rows], w.k[0, rows])

    def life_ended(self, unit: int, life: int, day: float) -> None:
        self.life_end[unit, life % LIFE_SLOTS] = day

    def life_started(self, unit: int, life: int) -> None:
        self.life_end[unit, life % LIFE_SLOTS] = np.inf

    def labels(self, unit: np.ndarray, life: np.ndarray, day: np.ndarray) -> np.ndarray:
        """1 if the row's life ended (breakdown or fault found) within the horizon of its day."""
        return (self.life_end[unit, life % LIFE_SLOTS] - day <= self.horizon).astype(np.int32)

    def family_of_sites(self) -> np.ndarray:
        return np.asarray(self.world.family)[self.world.model_for_site]

    # --- news from the monitor ---------------------------------------------------------------------------
    def drift_alarm(self, site: int, day: float, detail: str) -> None:
        self.alarmed[site] = True
        f = int(self.family_of_sites()[site])
        self.rts[f].drift_alarm(day, f"at {self.ctx.site_names[site]}: {detail}")

    # --- Retrainer hooks ---------------------------------------------------------------------------------
    def _cohort(self, family: int) -> np.ndarray:
        fam = self.family_of_sites() == family
        return (self.alarmed & fam) if self.cfg["policy"] == "on_drift" else (self.ctx.live & fam)

    def train(self, family: int, data_from_day: float, data_to_day: float, version: int) -> int:
        """Train ``version`` of ``family`` on the cohort's labelled rows of ``[from, to)``; scorer index."""
        w, m = self.world, self.m
        cohort = self._cohort(family)
        X, unit, _, life, day = self.rows.get(data_from_day, data_to_day, cohort)
        y = self.labels(unit, life, day)
        keep = (y == 1) | (self.rng.random(len(y)) < NEGATIVE_KEEP)
        X, y, unit = X[keep], y[keep], unit[keep]
        live_idx = self.scorer_of[(family, self.rts[family].live.version)]
        n_pos = int(y.sum())
        if n_pos < MIN_POSITIVES or n_pos == len(y):
            scorer, note = w.scorers[live_idx], " (too few positives: no new model)"
        else:
            cfg = TrainConfig(n_trees=m["n_trees"], num_leaves=m["num_leaves"],
                              learning_rate=m["learning_rate"])
            digest = hashlib.sha256(X.tobytes() + y.tobytes()).hexdigest()
            key = {"scenario": self.ctx.scenario.hash, "seed": self.ctx.seed, "family": family,
                   "version": version, "data": digest}
            seed = m["train_seed"] + 104729 * version + family
            if WARM_START:
                base = w.scorers[live_idx]
                entry = fit_correction(f"{self.name}-retrained", X, y, unit, logit(base.predict_proba(X)),
                                       self.features, CORRECTION, seed, self.registry, key)
                scorer = WarmStartScorer(base, OnnxScorer(entry.onnx_path, threads=m["threads"]))
            else:
                entry = build_model_lazy(f"{self.name}-retrained", lambda: (X, y, unit), self.features, cfg,
                                         seed, registry=self.registry, cache_config=key)
                scorer = OnnxScorer(entry.onnx_path, threads=m["threads"])
            note = ""
        w.scorers.append(scorer)
        self.threshold_of[len(w.scorers) - 1] = self._matched_threshold(scorer, cohort) if not note \
            else self.threshold_of.get(live_idx, float(m["threshold"]))
        w.model_type.append(w.model_type[family])
        w.family.append(family)
        idx = len(w.scorers) - 1
        if note:
            self.no_model.add(idx)  # nothing new to test: no shadow evidence, so the retrainer rejects it
        self.scorer_of[(family, version)] = idx
        self.cohorts[(family, version)] = cohort
        self.ctx.events.log(
            self.ctx.env.now, "retrain_data",
            detail=f"family {family} version {version}: {len(y)} rows ({n_pos} positive) from "
            f"{int(cohort.sum())} sites, days {data_from_day:g}-{data_to_day:g}{note}",
            value=float(len(y)),
        )
        return idx

    def _matched_threshold(self, scorer, cohort: np.ndarray) -> float:
        """The challenger's alert threshold: it flags the share of unit-days the live model flagged at the
        cohort's sites in their reference period (the alert load crews were trained on), on the cohort's
        latest ``MATCH_DAYS`` of rows (after the training cutoff, so not in its training data)."""
        feed, thr = self.world.mon_feed, float(self.m["threshold"])
        if feed is None:
            return thr
        ref = feed.ref_hist[cohort].sum(axis=0)
        if ref.sum() <= 0:
            return thr
        share = ref[min(int(thr * FINE_BINS), FINE_BINS - 1):].sum() / ref.sum()
        day = self.ctx.env.now / 24.0
        X, *_ = self.rows.get(day - MATCH_DAYS, day + 1, cohort)
        if len(X) < SHADOW_MIN_ROWS or share <= 0:
            return thr
        return float(np.quantile(scorer.predict_proba(X), 1.0 - share))

    def activate(self, family: int, model: int, version: int) -> None:
        """Make ``version`` live at its cohort (promotion) or at the sites of newer versions (rollback)."""
        fam = self.family_of_sites() == family
        newer = fam & (self.site_version > version)
        sites = newer if newer.any() else self.cohorts.get((family, version), newer)
        for s in np.flatnonzero(sites):
            self.world.set_model(int(s), model)
        self.site_version[sites] = version
        self.world.thr[sites] = np.float32(self.threshold_of.get(model, float(self.m["threshold"])))
        feed = self.world.mon_feed
        if feed is not None and sites.any():
            day = self.ctx.env.now / 24.0
            X, _, site, _, _ = self.rows.get(day - feed.mon.cfg["window_days"], day + 1, sites)
            if len(X):
                s = self.world.scorers[model].predict_proba(X)
                b = np.minimum((s * FINE_BINS).astype(np.int64), FINE_BINS - 1)
                hist = np.zeros((self.ctx.n_sites, FINE_BINS))
                np.add.at(hist, (site, b), 1.0)
                idx = np.flatnonzero(sites & (hist.sum(axis=1) > 0))
                feed.rebase(idx, hist[idx])

    def _logger(self, family: int):
        def log(ev) -> None:
            if ev.kind == "shadow_start":
                self.shadow_next[family] = self.rts[family].challenger.data_to_day
            self.ctx.events.log(ev.day * 24.0, f"retrain_{ev.kind}", detail=f"family {family}: {ev.detail}",
                                value=float(ev.version))
        return log

    # --- the daily evaluation ------------------------------------------------------------------------------
    def _scores(self, X: np.ndarray, site: np.ndarray, scorer: int | None) -> np.ndarray:
        """Scores of ``scorer`` (None: each site's live model) on logged rows."""
        w = self.world
        if scorer is not None:
            return w.scorers[scorer].predict_proba(X)
        out = np.empty(len(X), dtype=np.float32)
        mi = w.model_for_site[site]
        for j in np.unique(mi):
            sel = mi == j
            out[sel] = w.scorers[int(j)].predict_proba(X[sel])
        return out

    def _compare(  # noqa: PLR0917
        self, day_from: float, day_to: float, sites: np.ndarray, a: int | None, b: int, min_pos: int = 1
    ) -> tuple[float, float, float]:
        """F1 of ``a`` (None: live) and ``b`` on the labelled rows of ``[from, to)`` at ``sites``, weight."""
        X, unit, site, life, day = self.rows.get(day_from, day_to, sites)
        if len(X) < SHADOW_MIN_ROWS:
            return float("nan"), float("nan"), 0.0
        y = self.labels(unit, life, day)
        if y.sum() < min_pos:
            return float("nan"), float("nan"), 0.0
        thr_a = self.world.thr[site] if a is None else np.float32(self.threshold_of[a])
        fa, wa = f1_at(y, self._scores(X, site, a), thr_a)
        fb, wb = f1_at(y, self._scores(X, site, b), np.float32(self.threshold_of[b]))
        return fa, fb, max(wa, wb)

    def daily(self):
        """SimPy process: shadow evidence, probation checks, re-triggers, then each retrainer's day."""
        env = self.ctx.env
        while True:
            yield env.timeout(24.0)
            day = env.now / 24.0
            labelled_to = day - self.horizon - 1  # rows of days before this have known labels
            for f, rt in enumerate(self.rts):
                if rt.state == "shadow" and self.scorer_of[(f, rt.challenger.version)] not in self.no_model:
                    ch = rt.challenger
                    start = self.shadow_next.get(f, ch.data_to_day)
                    if labelled_to > start:
                        live, chal, wt = self._compare(start, labelled_to, self.cohorts[(f, ch.version)],
                                                       None, self.scorer_of[(f, ch.version)])
                        if wt > 0:
                            rt.record_shadow(live, chal, wt)
                            self.shadow_next[f] = labelled_to
                self._probation(f, rt, day, labelled_to)
                if self.cfg["policy"] == "on_drift" and rt.state == "idle" and self.ctx.monitor is not None:
                    fam = self.family_of_sites() == f
                    open_ = self.world.mon_feed.alarm_open()
                    uncovered = self.alarmed & open_ & fam & (self.site_version == 1)
                    if uncovered.any():
                        rt.drift_alarm(day, f"open alarms at {int(uncovered.sum())} sites on version 1")
                rt.step(day)

    def _probation(self, f: int, rt: retrain.Retrainer, day: float, labelled_to: float) -> None:
        since = rt.live.live_from_day
        if rt.live.version == 1 or rt.previous is None or day - since > self.cfg["probation_days"]:
            return
        sites = self.cohorts[(f, rt.live.version)]
        prev = self.scorer_of[(f, rt.previous.version)]
        live, old, _ = self._compare(since, labelled_to, sites, None, prev, PROBATION_POSITIVES)
        rt.probation(day, live, old)


def attach(ctx, world, model_name: str, n_sensors: int, registry: Registry | None) -> None:
    """Wire retraining into a maintenance run when ``[retrain] policy`` is not ``never`` (ONNX models)."""
    if ctx.scenario.get("retrain.policy") == "never" or ctx.scenario.get("model.kind") != "onnx":
        return
    from sim.domains.maintenance.degradation import feature_names  # noqa: PLC0415

    rt = MaintenanceRetraining(ctx, world, model_name, feature_names(n_sensors), registry)
    world.retrainer = rt
    ctx.extra["retrainer"] = rt
    ctx.extra["drift_alarm"] = rt.drift_alarm
    ctx.env.process(rt.daily())


def retrain_headline(ctx) -> dict[str, float]:
    """Retrain promotions, rejections, rollbacks and sites on a retrained model (only with retraining)."""
    rt = ctx.extra.get("retrainer")
    if rt is None:
        return {}
    s = rt.summary()
    return {
        "retrain_promotions": s.get("promotions", 0.0),
        "retrain_rejections": s.get("rejections", 0.0),
        "retrain_rollbacks": s.get("rollbacks", 0.0),
        "sites_on_retrained_model": s["sites_on_retrained_model"],
    }
