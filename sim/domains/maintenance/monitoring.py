"""The engine monitor fed from the maintenance world's daily scoring (``[monitor] enabled = true``).

Each day the world scores its units (one row per unit-day). Rows at *monitored* sites (``World.
monitored_sites()``: the fleet's regions from day 0, since every van is scored in shadow; a plant once it
scores with the model its crews will get) go to the engine monitor (:class:`sim.monitor.Monitor`):

- **Reference.** A site's first ``reference_days`` of monitored scores are its own reference. The pilot
  wave's references also form the monitor's pooled reference (its quantile bins and calibrated null); the
  other sites' references are handed to the monitor with ``Monitor.rebase`` when complete, so a plant whose
  local model scores differently from the lighthouse's is compared with itself, not with the lighthouse.
  Until its reference is complete a site's scores are held back from the monitor (no statistic, no alarm).
- **Labels.** Alert outcomes (did the unit fail within ``model.horizon_days``) go in on the alert's day; the
  monitor only reads them after its ``label_delay_days`` (set it to the horizon: a negative is only known
  when the horizon has passed).
"""

from __future__ import annotations

import numpy as np

from sim.detection.feature_watch import FeatureWatch
from sim.monitor import FINE_BINS, matched_threshold


class MonitorFeed:
    """Per-site references and the daily feed of scores and alert outcomes into ``ctx.monitor``."""

    def __init__(self, ctx, world, feature_names: list[str] | None = None):
        self.ctx, self.world, self.mon = ctx, world, ctx.monitor
        n = ctx.n_sites
        self.ref_days = self.mon.cfg["reference_days"]
        self.first_day = np.full(n, np.inf)  # first day a site's scores were monitored
        self.ref_hist = np.zeros((n, FINE_BINS))
        self.ref_done = np.zeros(n, dtype=bool)
        self.pilot = ctx.wave == 0
        self.budget_thr = np.full(n, np.nan)  # threshold at a site's first recalibration (its alert budget)
        self.features: FeatureWatch | None = None
        if self.mon.cfg["features"] and feature_names is not None:
            self.features = FeatureWatch(ctx, feature_names)

    def start_day(self, day: int) -> None:
        """Clear the monitor's ring slot; hand complete per-site references to the monitor."""
        self.mon.start_day(day)
        ready = ~self.ref_done & (day - self.first_day >= self.ref_days)
        if ready.any() and self.mon.site_reference is not None:
            self.mon.rebase(np.flatnonzero(ready), self.ref_hist[ready])
            self.ref_done |= ready

    def add(self, day: int, rows: np.ndarray, scores: np.ndarray, X: np.ndarray | None = None) -> None:
        """Scores (and feature rows ``X``) of ``rows`` (units) today; unmonitored sites' rows are skipped."""
        monitored = self.world.monitored_sites()
        sites = self.world.site[rows]
        keep = monitored[sites]
        if not keep.any():
            return
        sites, scores = sites[keep], np.asarray(scores[keep], dtype=np.float64)
        if self.features is not None and X is not None:
            self.features.add(day, sites, X[keep])
        start = np.unique(sites[~np.isfinite(self.first_day[sites])])
        self.first_day[start] = day
        in_ref = day - self.first_day[sites] < self.ref_days
        b = np.minimum((scores * FINE_BINS).astype(np.int64), FINE_BINS - 1)
        np.add.at(self.ref_hist, (sites[in_ref], b[in_ref]), 1.0)
        # the pilot's reference rows build the pooled reference; other sites wait for their own reference
        to_mon = self.pilot[sites] | self.ref_done[sites]
        if to_mon.any():
            ref = (in_ref & self.pilot[sites])[to_mon]
            self.mon.add_scores(sites[to_mon], scores[to_mon], np.ones(int(to_mon.sum())), day,
                                reference_mask=ref)

    def end_of_day(self, day: int, true_alerts: np.ndarray, false_alerts: np.ndarray) -> None:
        """Delivered alerts of the day and their outcomes (read by the monitor after its label delay)."""
        self.mon.add_alert_outcomes(true_alerts.copy(), false_alerts.copy(), day)

    def recalibrate(self, site: int) -> None:
        """``on_alarm = "recalibrate"``: re-fit the site's alert threshold so the share of its window's scores
        at or above it equals the share of its own reference's scores at or above the threshold it had then
        (the alert load crews were used to: an alert budget). A stopgap while a retrain is pending; a
        promotion sets its own, matched to the same share."""
        mon, w = self.mon, self.world
        day = int(self.ctx.env.now // 24)
        if not np.isfinite(self.budget_thr[site]):
            self.budget_thr[site] = w.thr[site]
        thr = matched_threshold(self.ref_hist[site], self.budget_thr[site], mon.window_hist(day, site))
        if thr is None or thr == w.thr[site]:
            return
        w.thr[site] = thr
        self.ctx.events.log(self.ctx.env.now, "threshold_recalibrated", site=self.ctx.site_names[site],
                            value=float(w.thr[site]))

    def rebase(self, sites: np.ndarray, fine_hist: np.ndarray) -> None:
        """A new reference for ``sites`` (a promoted model's scores on their recent rows); their windows
        restart empty, so the new model's scores are not compared with a window of the old model's."""
        if self.mon.site_reference is not None and len(sites):
            self.mon.rebase(sites, fine_hist)
            self.mon.reset_window(sites)
        if self.features is not None and len(sites):
            self.features.rebase(sites, int(self.ctx.env.now // 24))

    def alarm_open(self) -> np.ndarray:
        """Sites with an open score or feature alarm."""
        out = self.mon.alarm_open.copy()
        if self.features is not None:
            out |= self.features.open
        return out
