"""Feature-window drift monitoring of a model's inputs (``[monitor] features = true``).

A score monitor cannot see every drift: a sensor whose gain falls hides a fault's signature and shrinks the
noise, and on some machine types the model's scores barely move (the faults it should flag just stop being
flagged). This watch tests the model's *inputs* instead, with :mod:`sim.detection.detectors`:

- **Reference.** Each monitored site's own first ``reference_days`` of feature rows (once it is monitored),
  thinned to one row per unit every ``rows_per_unit`` days, because a unit's daily rows share slow moving
  averages and are nearly copies of each other.
- **Window.** Each day, the site's rows of that day: one row per unit, different units roughly independent.
- **Test.** The two-sample Kolmogorov-Smirnov test per feature
  (:meth:`sim.detection.detectors.Reference.compare`), Bonferroni over the features: a feature drifts when its
  p-value is below ``feature_level / features`` and its statistic is at least ``feature_min_ks`` (practical
  significance). An alarm needs a drifting feature on ``feature_persist_days`` consecutive days.
- **Reaction.** An alarm is logged as a ``monitor_alarm`` (so ``drift_alarms`` and ``detection_delay`` count
  it), re-fits the site's threshold under ``on_alarm = "recalibrate"`` and goes to the retraining policy.
- **Input re-standardisation** (``feature_remap = true``): at an alarm, each drifted feature of the site is
  mapped back onto its reference by an affine map that matches the robust location and scale (median and
  interquartile range) of the alarm's window rows to the reference's. A sensor whose gain or zero moved is
  thereby re-standardised, as an engineer would re-zero and re-scale a replaced sensor against the readings it
  used to give [assumption: the site's mix of healthy and failing units is the same in both periods]. The
  model, the retraining and the watch itself then see the mapped features; the watch keeps testing them
  against the reference, so a drift that keeps moving raises a new alarm and a new map on top.
"""

from __future__ import annotations

import numpy as np

from sim.detection.detectors import Reference

MIN_ROWS = 20   # rows a site needs in its thinned reference and in a day's window before it is tested


class FeatureWatch:
    """Per-site feature references, daily KS tests and alarms (see the module docstring)."""

    def __init__(self, ctx, feature_names: list[str]):
        self.ctx = ctx
        cfg = ctx.monitor.cfg
        self.names = list(feature_names)
        self.ref_days = int(cfg["reference_days"])
        self.every = max(round(cfg["rows_per_unit"]), 1)
        self.alpha = cfg["feature_level"] / len(self.names)
        self.min_ks = cfg["feature_min_ks"]
        self.persist = cfg["feature_persist_days"]
        n = ctx.n_sites
        self.start = np.full(n, np.inf)  # first day of a site's (current) reference period
        self.ref_rows: list[list[np.ndarray]] = [[] for _ in range(n)]
        self.ref: list[Reference | None] = [None] * n
        self.remap = bool(cfg["feature_remap"])
        F = len(self.names)
        self.scale = np.ones((n, F))  # mapped = raw * scale + shift, per site and feature
        self.shift = np.zeros((n, F))
        # rows of the current run of drifting days (at most feature_persist_days of them)
        self.recent: list[list[np.ndarray]] = [[] for _ in range(n)]
        self.open = np.zeros(n, dtype=bool)  # an alarm is open (until the features are back in range)
        self.alarms = 0

    def map(self, sites: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Feature rows as the model sees them (the sites' input maps applied; ``X`` itself if none)."""
        mapped = (self.scale != 1.0).any(axis=1) | (self.shift != 0.0).any(axis=1)
        if not mapped[sites].any():
            return X
        return (X * self.scale[sites] + self.shift[sites]).astype(X.dtype)

    def add(self, day: int, sites: np.ndarray, X: np.ndarray) -> None:
        """Today's (mapped) feature rows at monitored sites, one per scored unit: reference rows or a test."""
        for site in np.unique(sites):
            s = int(site)
            Xs = X[sites == site]
            if not np.isfinite(self.start[s]):
                self.start[s] = day
            age = day - self.start[s]
            if age < self.ref_days:
                if age % self.every == 0:
                    self.ref_rows[s].append(np.array(Xs, dtype=np.float64))
                continue
            if self.ref[s] is None:
                rows = np.concatenate(self.ref_rows[s]) if self.ref_rows[s] else np.zeros((0, X.shape[1]))
                self.ref_rows[s] = []
                if len(rows) < MIN_ROWS:
                    self.start[s] = day  # too few rows: collect a new reference
                    continue
                self.ref[s] = Reference(rows, columns=self.names)
            if len(Xs) >= MIN_ROWS:
                self._test(day, s, Xs)

    def _test(self, day: int, s: int, Xs: np.ndarray) -> None:
        comp = self.ref[s].compare(np.asarray(Xs, dtype=np.float64))
        hit = (comp["ks_pvalue"] < self.alpha) & (comp["ks"] >= self.min_ks)
        self.recent[s] = (self.recent[s] + [Xs])[-self.persist:] if hit.any() else []
        if not hit.any():
            if self.open[s]:
                self.open[s] = False
                self.ctx.events.log(self.ctx.env.now, "monitor_clear", site=self.ctx.site_names[s],
                                    detail="features back in range")
            return
        if self.open[s] or len(self.recent[s]) < self.persist:
            return
        if self.remap:
            self._remap(s, hit)
        else:
            self.open[s] = True
        self.alarms += 1
        k = int(np.argmax(np.where(hit, comp["ks"], -1.0)))
        detail = (f"features: {int(hit.sum())} of {len(self.names)} drifted, largest {self.names[k]} "
                  f"ks={comp['ks'][k]:.3f} p={comp['ks_pvalue'][k]:.2g}")
        ctx = self.ctx
        ctx.kpi.add("monitor_alarms", s, 1.0, day)
        ctx.events.log(ctx.env.now, "monitor_alarm", site=ctx.site_names[s], detail=detail,
                       value=float(comp["ks"][k]))
        if ctx.monitor.cfg["on_alarm"] == "recalibrate" and ctx.extra.get("recalibrate") is not None:
            ctx.extra["recalibrate"](s)
        if ctx.extra.get("drift_alarm") is not None:
            ctx.extra["drift_alarm"](s, ctx.env.now / 24.0, detail)

    def _remap(self, s: int, hit: np.ndarray) -> None:
        """Compose the site's input map with one that takes the drifted features of the drifting days' rows
        onto the reference (median and interquartile range). The alarm then closes: the next days test the
        re-mapped features."""
        W = np.concatenate(self.recent[s])  # rows as mapped so far
        R = self.ref[s].sorted  # [F, n] sorted reference columns
        n = R.shape[1]
        q = lambda a, p: a[:, min(int(p * (n - 1)), n - 1)]  # noqa: E731
        ref_med, ref_iqr = q(R, 0.5), q(R, 0.75) - q(R, 0.25)
        cur_med = np.median(W, axis=0)
        cur_iqr = np.quantile(W, 0.75, axis=0) - np.quantile(W, 0.25, axis=0)
        ok = hit & (cur_iqr > 0) & (ref_iqr > 0)
        a = np.where(ok, ref_iqr / np.where(cur_iqr > 0, cur_iqr, 1.0), 1.0)
        b = np.where(ok, ref_med - a * cur_med, 0.0)
        # mapped' = a * mapped + b = a * (raw * scale + shift) + b
        self.scale[s] = a * self.scale[s]
        self.shift[s] = a * self.shift[s] + b
        self.recent[s] = []
        maps = ", ".join(f"{self.names[k]} x{a[k]:.2f}{b[k]:+.2f}" for k in np.flatnonzero(ok))
        self.ctx.events.log(self.ctx.env.now, "inputs_remapped", site=self.ctx.site_names[s], detail=maps)

    def rebase(self, sites: np.ndarray, day: int) -> None:
        """A new model went live at ``sites``: rebuild their references from the rows that follow (with
        ``feature_remap`` the references stay: the inputs are mapped back onto them)."""
        if self.remap:
            return
        for s in np.asarray(sites, dtype=np.int64):
            self.start[s] = day + 1
            self.ref[s] = None
            self.ref_rows[s] = []
            self.recent[s] = []
            self.open[s] = False
