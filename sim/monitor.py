"""Monitoring of a live model: score-distribution drift (PSI) and alert precision once labels arrive.

The reference distribution is the pooled model-score histogram of the pilot wave's first ``reference_days``
live days (what the model was validated on in the pilot). Every day, for each live site, the monitor compares
the last ``window_days`` of scores with the reference by the population stability index on ``psi_bins``
quantile bins of the reference, and checks the precision of alerts whose labels have arrived (alerts at least
``label_delay_days`` old). A site whose PSI exceeds ``psi_threshold`` or whose precision falls below
``ppv_min`` (with at least ``min_alerts`` labelled alerts) raises an alarm; ``on_alarm`` says what is done.

``method`` chooses the drift test: ``psi_fixed`` (the default, the industry rule of thumb: PSI above a fixed
``psi_threshold``) or ``calibrated``: ``stat`` (PSI or Jensen-Shannon distance, from
:func:`sim.detection.detectors.binned_stats`) above a threshold calibrated to a false-alarm ``level`` per
check, by a multinomial bootstrap of the reference histogram rescaled to each window's effective sample size
(Kish's effective rows of the weighted window, divided by ``rows_per_unit`` because one patient's hourly
scores are not independent draws), and never below ``min_stat`` (a practical-significance floor). New alarms
also go to the domain's drift-alarm hook (``ctx.extra["drift_alarm"]``) when it has one, e.g. a
:mod:`sim.retrain` policy.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import numpy as np

from sim.detection.detectors import binned_stats
from sim.schema import Rule

SCHEMA: dict[str, Rule] = {
    "enabled": Rule("bool", True, doc="false: nobody looks (no statistics, no alarms)"),
    "psi_threshold": Rule(
        "float", 0.25, min=0, doc="alarm above this PSI (0.25: the industry rule of thumb)"
    ),
    "psi_bins": Rule("int", 10, min=2, max=50, doc="quantile bins of the reference"),
    "ppv_min": Rule("float", 0.0, min=0, max=1, doc="alarm when labelled alert precision falls below"),
    "min_alerts": Rule("float", 20, min=0, doc="labelled alerts needed before precision is judged"),
    "window_days": Rule("int", 14, min=1, max=180, doc="days of scores and labels a check looks at"),
    "label_delay_days": Rule("int", 7, min=0, max=180, doc="days until an alert's outcome is known"),
    "reference_days": Rule("int", 30, min=1, max=365, doc="pilot days that form the reference"),
    "on_alarm": Rule(
        "str",
        "none",
        choices=("none", "recalibrate"),
        doc="none: alarms are logged (and can hold the rollout); recalibrate: the domain re-fits"
        " the site's alert threshold on its labelled recent data",
    ),
    "features": Rule(
        "bool",
        False,
        doc="maintenance domains: also test each site's model-input features against its own reference"
        " (KS per feature, sim/detection/feature_watch.py); sees drifts the scores hide",
    ),
    "feature_level": Rule(
        "float", 0.001, min=1e-9, max=0.5,
        doc="features: false-alarm level per site-day, Bonferroni over the features"
    ),
    "feature_min_ks": Rule("float", 0.1, min=0, max=1, doc="features: never alarm below this KS statistic"),
    "feature_remap": Rule(
        "bool",
        False,
        doc="features: at an alarm, map the drifted features back onto the site's reference (robust affine"
        " re-standardisation, a stopgap for a sensor whose gain or zero moved)",
    ),
    "feature_persist_days": Rule(
        "int", 2, min=1, max=60, doc="features: consecutive days a feature must drift before an alarm"
    ),
    "silent_next_wave": Rule(
        "bool",
        False,
        doc="sepsis: when a wave goes live, the model also scores the next wave's sites without alerting"
        " (silent mode); the monitor watches them and retraining uses their rows, so they go live on a"
        " re-fitted threshold or a retrained model if they drifted",
    ),
    "method": Rule(
        "str",
        "psi_fixed",
        choices=("psi_fixed", "calibrated"),
        doc="psi_fixed: PSI > psi_threshold; calibrated: stat > bootstrap threshold at `level`",
    ),
    "stat": Rule("str", "psi", choices=("psi", "js"), doc="calibrated: PSI or Jensen-Shannon distance"),
    "level": Rule("float", 0.001, min=1e-6, max=0.5, doc="calibrated: false-alarm probability per check"),
    "rows_per_unit": Rule("float", 24.0, min=1, doc="calibrated: scored rows that make one independent draw"),
    "min_stat": Rule("float", 0.0, min=0, doc="calibrated: never alarm below this statistic value"),
    "bootstrap_draws": Rule("int", 2000, min=100, max=100000, doc="calibrated: draws of the null"),
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
        self.calibrated = cfg.get("method", "psi_fixed") == "calibrated"
        self.w2 = np.zeros((self.ring, n_sites)) if self.calibrated else None  # sum of squared row weights
        self.ref_w2 = 0.0
        self.null_const: float | None = None  # calibrated: statistic x n_eff quantile (PSI; JS squared)

    # --- fed by the domain -------------------------------------------------------------------------------
    def add_scores(
        self,
        sites: np.ndarray,
        scores: np.ndarray,
        weights: np.ndarray,
        day: int,
        reference_mask: np.ndarray | None = None,
    ) -> None:
        """Add scored rows (scores in [0, 1]); rows under ``reference_mask`` also build the reference."""
        b = np.minimum((scores * FINE_BINS).astype(np.int64), FINE_BINS - 1)
        np.add.at(self.hist[day % self.ring], (sites, b), weights)
        if reference_mask is not None and reference_mask.any():
            np.add.at(self.reference, b[reference_mask], weights[reference_mask])
        if self.w2 is not None:
            w2 = np.asarray(weights, dtype=np.float64) ** 2
            np.add.at(self.w2[day % self.ring], sites, w2)
            if reference_mask is not None and reference_mask.any():
                self.ref_w2 += float(w2[reference_mask].sum())

    def add_alert_outcomes(self, true_per_site: np.ndarray, false_per_site: np.ndarray, day: int) -> None:
        self.true_alerts[day % self.ring] += true_per_site
        self.false_alerts[day % self.ring] += false_per_site

    def start_day(self, day: int) -> None:
        """Clear the ring slot that ``day`` reuses."""
        slot = day % self.ring
        self.hist[slot] = 0.0
        self.true_alerts[slot] = 0.0
        self.false_alerts[slot] = 0.0
        if self.w2 is not None:
            self.w2[slot] = 0.0

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

    def _binned(self, hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reference and window counts [sites, psi_bins] on the pooled reference's quantile bins."""
        if self._edges is None:
            self._edges = self._quantile_edges()
            self.site_reference = np.tile(self.reference, (hist.shape[0], 1))
        starts = np.r_[0, self._edges + 1]
        return (np.add.reduceat(self.site_reference, starts, axis=1), np.add.reduceat(hist, starts, axis=1))

    def _null_constant(self, ref_counts: np.ndarray, rng: np.random.Generator) -> float:
        """Quantile at ``1 - level`` of the statistic x effective size on change-free multinomial splits."""
        p = ref_counts / ref_counts.sum()
        n0 = m0 = 2000
        draws = self.cfg["bootstrap_draws"]
        a, b = rng.multinomial(n0, p, size=draws), rng.multinomial(m0, p, size=draws)
        st = binned_stats(a, b)[self.cfg["stat"]]
        st = st if self.cfg["stat"] == "psi" else st**2
        k = min(int(np.ceil((1 - self.cfg["level"]) * (draws + 1))), draws)
        return float(np.sort(st)[k - 1] * (n0 * m0 / (n0 + m0)))

    def thresholds(self, w_sum: np.ndarray, w2_sum: np.ndarray) -> np.ndarray:
        """Calibrated per-site thresholds for windows with these row-weight sums (and squared sums)."""
        unit = self.cfg["rows_per_unit"]
        m = np.divide(w_sum**2, w2_sum, out=np.zeros_like(w_sum), where=w2_sum > 0) / unit
        n = (self.reference.sum() ** 2 / self.ref_w2 if self.ref_w2 > 0 else 0.0) / unit
        with np.errstate(divide="ignore"):
            scale = 1.0 / np.maximum(m, 1e-12) + 1.0 / max(n, 1e-12)
        thr = self.null_const * scale
        thr = thr if self.cfg["stat"] == "psi" else np.sqrt(thr)
        return np.maximum(thr, self.cfg["min_stat"])

    def check_calibrated(
        self, day: int, live: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Statistic, its calibrated threshold, labelled precision and labelled-alert count per site."""
        w = self.cfg["window_days"]
        score_days = [(day - i) % self.ring for i in range(w) if day - i >= 0]
        ref, cur = self._binned(self.hist[score_days].sum(axis=0))
        if self.null_const is None:
            self.null_const = self._null_constant(self.reference_binned(), rng)
        stat = binned_stats(ref, cur)[self.cfg["stat"]]
        thr = self.thresholds(cur.sum(axis=1), self.w2[score_days].sum(axis=0))
        _, ppv, n = self.check(day, live)
        stat[~live] = np.nan
        return stat, thr, ppv, n

    def rebase(self, sites: np.ndarray, fine_hist: np.ndarray) -> None:
        """New per-site reference (fine score histogram [FINE_BINS]) for ``sites``, e.g. after a new model."""
        if self.site_reference is not None:
            self.site_reference[np.asarray(sites)] = fine_hist

    def reset_window(self, sites: np.ndarray) -> None:
        """Forget ``sites``' recent scores (e.g. after a new model goes live there, so its scores are not
        compared with a window of the old model's); their checks resume once a window has filled again."""
        self.hist[:, sites] = 0.0
        if self.w2 is not None:
            self.w2[:, sites] = 0.0

    def window_hist(self, day: int, site: int) -> np.ndarray:
        """Fine score histogram of ``site``'s last ``window_days`` up to ``day``."""
        slots = [(day - i) % self.ring for i in range(self.cfg["window_days"]) if day - i >= 0]
        return self.hist[slots, site].sum(axis=0)

    def reference_binned(self) -> np.ndarray:
        starts = np.r_[0, self._edges + 1]
        return np.add.reduceat(self.reference, starts)

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


def matched_threshold(ref_hist: np.ndarray, ref_threshold: float, hist: np.ndarray) -> np.float32 | None:
    """The alert threshold at which scores with the fine histogram ``hist`` (FINE_BINS bins on [0, 1]) are
    exceeded as often as the reference scores ``ref_hist`` exceeded ``ref_threshold``: a re-fit that keeps
    the alert load people are used to. None without data in either histogram."""
    if ref_hist.sum() <= 0 or hist.sum() <= 0:
        return None
    b0 = min(int(float(ref_threshold) * FINE_BINS), FINE_BINS - 1)
    target = ref_hist[b0:].sum() / ref_hist.sum()
    tail = np.cumsum(hist[::-1])[::-1] / hist.sum()
    ok = np.flatnonzero(tail <= target)
    return np.float32(ok[0] / FINE_BINS) if len(ok) else np.float32(1.0)


def drift_headline(ctx) -> dict[str, float]:
    """``drift_alarms``, ``detection_delay`` (days) and ``retrains`` for the headline, from the event log.

    The change point is the first ``drift_start`` event; affected sites are those of any drift entry.
    ``drift_alarms`` counts monitor alarms at affected sites from the change point on; ``detection_delay`` is
    the days from the change point to the first of them (NaN without drift or without such an alarm).
    ``retrains`` is the retraining policy's count of training runs (``ctx.extra["retrainer"]``), else 0.
    """
    starts = [r["time_h"] for r in ctx.events.of_kind("drift_start")]
    alarms, delay = 0, float("nan")
    if starts and ctx.drift is not None and ctx.drift.entries:
        t0 = min(starts)
        affected = np.any([e["mask"] for e in ctx.drift.entries], axis=0)
        names = {ctx.site_names[i] for i in np.flatnonzero(affected)}
        hits = [
            r["time_h"]
            for r in ctx.events.of_kind("monitor_alarm")
            if r["site"] in names and r["time_h"] >= t0
        ]
        alarms = len(hits)
        delay = (min(hits) - t0) / 24.0 if hits else float("nan")
    rt = ctx.extra.get("retrainer")
    return {
        "drift_alarms": float(alarms),
        "detection_delay": delay,
        "retrains": float(rt.retrains if rt is not None else 0),
    }


def process(
    ctx,
    recalibrate: Callable[[int], None] | None,
    on_drift_alarm: Callable[[int, float, str], None] | None = None,
) -> Generator:
    """Daily SimPy process: statistics, alarms, KPIs and the configured reaction.

    ``on_drift_alarm(site, day, detail)`` is called for every new alarm (e.g. a retraining policy).
    """
    mon: Monitor = ctx.monitor
    cfg = mon.cfg
    rng = ctx.streams.generator("monitor.calibration") if mon.calibrated else None
    pilot_start = ctx.scenario.get("rollout.first_go_live_day")
    yield ctx.env.timeout(24.0 * (pilot_start + cfg["reference_days"]) - 1e-6)
    while True:
        yield ctx.env.timeout(24.0)
        day = int(ctx.env.now // 24)
        watched = ctx.live | ctx.silent  # silent sites (``silent_next_wave``) are monitored before go-live
        live_long = watched & (ctx.env.now - ctx.watched_since >= 24.0 * cfg["window_days"])
        if mon.calibrated:
            psi, thr, ppv, n = mon.check_calibrated(day, live_long, rng)
            drifted = np.nan_to_num(psi) > thr
        else:
            psi, ppv, n = mon.check(day, live_long)
            drifted = np.nan_to_num(psi) > cfg["psi_threshold"]
        bad = live_long & (
            drifted | ((n >= cfg["min_alerts"]) & (np.nan_to_num(ppv, nan=1.0) < cfg["ppv_min"]))
        )
        ctx.kpi.set_max("monitor_psi", np.nan_to_num(psi), day)
        new = bad & ~mon.alarm_open
        for s in np.flatnonzero(new):
            mon.alarms += 1
            mon.alarm_days.append(ctx.env.now / 24.0)
            ctx.kpi.add("monitor_alarms", s, 1.0, day)
            stat = "psi" if not mon.calibrated else f"{cfg['stat']}(thr={thr[s]:.3f})"
            detail = f"{stat}={psi[s]:.3f} ppv={ppv[s]:.3f} labelled_alerts={n[s]:.0f}"
            ctx.events.log(ctx.env.now, "monitor_alarm", site=ctx.site_names[s], detail=detail, value=psi[s])
            if cfg["on_alarm"] == "recalibrate" and recalibrate is not None:
                recalibrate(int(s))
                mon.recalibrations += 1
                window = [(day - i) % mon.ring for i in range(cfg["window_days"]) if day - i >= 0]
                mon.site_reference[s] = mon.hist[window, s].sum(axis=0)
                ctx.events.log(ctx.env.now, "recalibrated", site=ctx.site_names[s])
            if on_drift_alarm is not None:
                on_drift_alarm(int(s), ctx.env.now / 24.0, detail)
        cleared = mon.alarm_open & ~bad & live_long
        for s in np.flatnonzero(cleared):
            ctx.events.log(ctx.env.now, "monitor_clear", site=ctx.site_names[s], value=psi[s])
        mon.alarm_open = (mon.alarm_open | bad) & ~cleared
        mon.alarm_open &= watched
