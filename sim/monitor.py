"""Monitoring of a live model: score-distribution drift (PSI) and alert precision once labels arrive.

The reference distribution is the pooled model-score histogram of the pilot wave's first ``reference_days``
live days (what the model was validated on in the pilot). Every day, for each live site, the monitor compares
the last ``window_days`` of scores with the reference by the population stability index on ``psi_bins``
quantile bins of the reference, and checks the precision of alerts whose labels have arrived (alerts at least
``label_delay_days`` old). A site whose PSI exceeds ``psi_threshold`` or whose precision falls below
``ppv_min`` (with at least ``min_alerts`` labelled alerts) raises an alarm; ``on_alarm`` says what is done.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import numpy as np

from sim.schema import Rule

SCHEMA: dict[str, Rule] = {
    "enabled": Rule("bool", True, doc="false: nobody looks (no statistics, no alarms)"),
    "psi_threshold": Rule("float", 0.25, min=0, doc="alarm above this PSI (0.25: the industry rule of thumb)"),
    "psi_bins": Rule("int", 10, min=2, max=50, doc="quantile bins of the reference"),
    "ppv_min": Rule("float", 0.0, min=0, max=1, doc="alarm when labelled alert precision falls below"),
    "min_alerts": Rule("float", 20, min=0, doc="labelled alerts needed before precision is judged"),
    "window_days": Rule("int", 14, min=1, max=180, doc="days of scores and labels a check looks at"),
    "label_delay_days": Rule("int", 7, min=0, max=180, doc="days until an alert's outcome is known"),
    "reference_days": Rule("int", 30, min=1, max=365, doc="pilot days that form the reference"),
    "on_alarm": Rule("str", "none", choices=("none", "recalibrate"),
                     doc="none: alarms are logged (and can hold the rollout); recalibrate: the domain re-fits"
                         " the site's alert threshold on its labelled recent data"),
    "source": Rule("str", "", doc="citations"),
}

FINE_BINS = 200


class Monitor:
    """Per-site score histograms, delayed-label alert outcomes, PSI and precision checks, alarms."""

    def __init__(self, cfg: dict, n_sites: int):
        self.cfg = cfg
        self.ring = max(cfg["window_days"], 1) + cfg["label_delay_days"] + 1
        self.hist = np.zeros((self.ring, n_sites, FINE_BINS))
        self.true_alerts = np.zeros((self.ring, n_sites))
        self.false_alerts = np.zeros((self.ring, n_sites))
        self.reference = np.zeros(FINE_BINS)
        self.site_reference: np.ndarray | None = None  # per site, set from the pooled one at first use
        self.alarm_open = np.zeros(n_sites, dtype=bool)
        self.alarms = 0
        self.recalibrations = 0
        self.alarm_days: list[float] = []
        self._edges: np.ndarray | None = None

    # --- fed by the domain -------------------------------------------------------------------------------
    def add_scores(self, sites: np.ndarray, scores: np.ndarray, weights: np.ndarray, day: int,
                   reference_mask: np.ndarray | None = None) -> None:
        """Add scored rows (scores in [0, 1]); rows under ``reference_mask`` also build the reference."""
        b = np.minimum((scores * FINE_BINS).astype(np.int64), FINE_BINS - 1)
        np.add.at(self.hist[day % self.ring], (sites, b), weights)
        if reference_mask is not None and reference_mask.any():
            np.add.at(self.reference, b[reference_mask], weights[reference_mask])

    def add_alert_outcomes(self, true_per_site: np.ndarray, false_per_site: np.ndarray, day: int) -> None:
        self.true_alerts[day % self.ring] += true_per_site
        self.false_alerts[day % self.ring] += false_per_site

    def start_day(self, day: int) -> None:
        """Clear the ring slot that ``day`` reuses."""
        slot = day % self.ring
        self.hist[slot] = 0.0
        self.true_alerts[slot] = 0.0
        self.false_alerts[slot] = 0.0

    # --- statistics --------------------------------------------------------------------------------------
    def _quantile_edges(self) -> np.ndarray:
        cdf = np.cumsum(self.reference) / max(self.reference.sum(), 1e-12)
        qs = np.linspace(0, 1, self.cfg["psi_bins"] + 1)[1:-1]
        cuts = np.unique(np.searchsorted(cdf, qs))
        return cuts

    def psi(self, hist: np.ndarray) -> np.ndarray:
        """PSI of each row of ``hist`` (sites x FINE_BINS) against each site's reference.

        Bins are the pooled reference's quantile bins; a site's reference is the pooled one until the site is
        recalibrated, then the window it was recalibrated on.
        """
        if self._edges is None:
            self._edges = self._quantile_edges()
            self.site_reference = np.tile(self.reference, (hist.shape[0], 1))
        starts = np.r_[0, self._edges + 1]
        ref = np.add.reduceat(self.site_reference, starts, axis=1)
        cur = np.add.reduceat(hist, starts, axis=1)
        eps = 1e-4
        p = np.maximum(ref / np.maximum(ref.sum(axis=1, keepdims=True), 1e-12), eps)
        totals = cur.sum(axis=1, keepdims=True)
        q = np.maximum(np.divide(cur, totals, out=np.zeros_like(cur), where=totals > 0), eps)
        out = ((q - p) * np.log(q / p)).sum(axis=1)
        out[totals[:, 0] <= 0] = np.nan
        return out

    def check(self, day: int, live: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """PSI, labelled precision and labelled-alert count per site for the windows ending at ``day``."""
        w, delay = self.cfg["window_days"], self.cfg["label_delay_days"]
        score_days = [(day - i) % self.ring for i in range(w) if day - i >= 0]
        psi = self.psi(self.hist[score_days].sum(axis=0))
        label_days = [(day - delay - i) % self.ring for i in range(w) if day - delay - i >= 0]
        t = self.true_alerts[label_days].sum(axis=0) if label_days else np.zeros(len(live))
        f = self.false_alerts[label_days].sum(axis=0) if label_days else np.zeros(len(live))
        n = t + f
        ppv = np.divide(t, n, out=np.full_like(n, np.nan), where=n > 0)
        psi[~live] = np.nan
        return psi, ppv, n


def process(ctx, recalibrate: Callable[[int], None] | None) -> Generator:
    """Daily SimPy process: statistics, alarms, KPIs and the configured reaction."""
    mon: Monitor = ctx.monitor
    cfg = mon.cfg
    pilot_start = ctx.scenario.get("rollout.first_go_live_day")
    yield ctx.env.timeout(24.0 * (pilot_start + cfg["reference_days"]) - 1e-6)
    while True:
        yield ctx.env.timeout(24.0)
        day = int(ctx.env.now // 24)
        live_long = ctx.live & (ctx.env.now - ctx.live_since >= 24.0 * cfg["window_days"])
        psi, ppv, n = mon.check(day, live_long)
        bad = live_long & ((np.nan_to_num(psi) > cfg["psi_threshold"])
                           | ((n >= cfg["min_alerts"]) & (np.nan_to_num(ppv, nan=1.0) < cfg["ppv_min"])))
        ctx.kpi.set_max("monitor_psi", np.nan_to_num(psi), day)
        new = bad & ~mon.alarm_open
        for s in np.flatnonzero(new):
            mon.alarms += 1
            mon.alarm_days.append(ctx.env.now / 24.0)
            ctx.kpi.add("monitor_alarms", s, 1.0, day)
            ctx.events.log(ctx.env.now, "monitor_alarm", site=ctx.site_names[s],
                           detail=f"psi={psi[s]:.3f} ppv={ppv[s]:.3f} labelled_alerts={n[s]:.0f}", value=psi[s])
            if cfg["on_alarm"] == "recalibrate" and recalibrate is not None:
                recalibrate(int(s))
                mon.recalibrations += 1
                window = [(day - i) % mon.ring for i in range(cfg["window_days"]) if day - i >= 0]
                mon.site_reference[s] = mon.hist[window, s].sum(axis=0)
                ctx.events.log(ctx.env.now, "recalibrated", site=ctx.site_names[s])
        cleared = mon.alarm_open & ~bad & live_long
        for s in np.flatnonzero(cleared):
            ctx.events.log(ctx.env.now, "monitor_clear", site=ctx.site_names[s], value=psi[s])
        mon.alarm_open = (mon.alarm_open | bad) & ~cleared
        mon.alarm_open &= ctx.live
