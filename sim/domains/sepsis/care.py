"""The hourly care process across all hospitals: admissions, vitals, screening, model alerts, outcomes.

One SimPy process ticks every simulated hour and works on numpy arrays over every active patient in every
hospital (never one SimPy event per patient). Per hour: admit, step physiology, screen at shift change,
score the patients at hospitals where the model is live in one onnxruntime call, raise alerts, let
clinicians act with the site's adoption probability, and resolve septic patients whose outcome is settled.

Sampling (documented weighting): every septic patient is simulated (weight 1); non-septic patients are
simulated at ``hospitals.nonseptic_sample_fraction`` with weight ``1 / fraction``. Non-septic patients only
matter for alert volume, precision, the monitor's score distribution and the utility score, all of which are
weighted sums, so the weights keep them unbiased.

Outcome (documented mechanism): a septic patient's death risk is
``expit(m0 + ln(mortality_odds_per_hour) * delay)``, where ``delay = clip(antibiotics - onset, 0, max)``.
Antibiotics start ``response`` hours after recognition by standard screening, or, if an alert that finds
sepsis is acted on first, ``alert_evaluation_hours + response`` after the alert. The counterfactual (no
model) for the same patient uses the screening path alone, evaluated on the same untreated trajectory.
Deaths are drawn with one uniform per patient shared by both arms (common random numbers); each purpose
(admissions, physiology, screening, acting on alerts, deaths) has its own random stream, so scenario variants
that differ only in the model or in adoption see the same patients and the same standard care.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np

from sim import monitor
from sim.domains.sepsis.physiology import Cohort
from sim.domains.sepsis.utility import UtilityAccumulator

KPIS = {
    "admissions": "sum",
    "septic_cases": "sum",
    "deaths_expected": "sum",
    "deaths_expected_cf": "sum",
    "deaths": "sum",
    "deaths_cf": "sum",
    "live_septic_cases": "sum",
    "live_deaths_expected": "sum",
    "live_deaths_expected_cf": "sum",
    "live_deaths": "sum",
    "live_deaths_cf": "sum",
    "alerts": "sum",
    "alerts_true": "sum",
    "alerts_false": "sum",
    "alerts_acted": "sum",
    "caught_early": "sum",
    "treat_delay_h": "sum",
    "treat_delay_cf_h": "sum",
    "patient_days": "sum",
    "live_patient_days": "sum",
    "p_act": "max",
}


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class SepsisCare:
    """State and hourly step of the sepsis case study inside one run."""

    def __init__(self, ctx, scorer, hospitals: dict):
        sc = ctx.scenario
        self.ctx = ctx
        self.h, self.p = sc.section("hospitals"), sc.section("patients")
        self.scr, self.tr, self.m = sc.section("screening"), sc.section("treatment"), sc.section("model")
        self.scorer = scorer
        self.models = None  # SiteModels when a retraining policy is on (per-site versions, reservoir)
        self.serving = None  # sim.serving.service.Serving when [serving] is enabled: predictions can be lost
        self.beds = hospitals["beds"]
        self.acuity_share = hospitals["acuity_share"]
        n = len(self.beds)
        census = self.beds * self.h["occupancy"]
        los_mean = self.p["los_hours_median"] * np.exp(self.p["los_sigma"] ** 2 / 2)
        self.adm_rate = census / los_mean  # admissions per hour
        self.nurse_shifts_per_day = 2.0 * census / self.h["patients_per_nurse"]
        self.weight_non = 1.0 / self.h["nonseptic_sample_fraction"]
        self.thr = np.full(n, self.m["threshold"], dtype=np.float32)
        self.cohort = Cohort(4096)
        # one stream per purpose, so that changing the model or adoption never changes who is admitted, how
        # their vitals evolve or what standard care does (common random numbers across scenario variants)
        self.adm_rng = ctx.streams.generator("sepsis.admissions")
        self.phys_rng = ctx.streams.generator("sepsis.physiology")
        self.screen_rng = ctx.streams.generator("sepsis.screening")
        self.act_rng = ctx.streams.generator("sepsis.act")
        self.oracle_rng = ctx.streams.generator("sepsis.oracle")
        self.death_rng = ctx.streams.generator("sepsis.deaths")
        self.day_true = np.zeros(n)
        self.day_false = np.zeros(n)
        self.utility = UtilityAccumulator()
        self.lead_times: list[np.ndarray] = []
        self.outcomes: dict[str, list[np.ndarray]] = {
            k: []
            for k in (
                "site",
                "onset",
                "admit",
                "recognised",
                "treat",
                "delay",
                "delay_cf",
                "m0",
                "p",
                "p_cf",
                "live",
                "alert_true_first",
            )
        }
        self.neg_hist = np.zeros((n, 200))  # recent non-septic score histogram per site (for recalibration)
        self.ref_neg_hist = np.zeros(200)
        self.log_or = np.log(self.tr["mortality_odds_per_hour"])
        self._base_cache: dict[tuple[str, float], np.ndarray] = {}

    # --- drifted per-site parameters ---------------------------------------------------------------------
    def site_param(self, name: str, base: float, t: float) -> np.ndarray:
        """Per-site value of a driftable generator parameter at hour ``t``."""
        key = (name, base)
        vec = self._base_cache.get(key)
        if vec is None:
            vec = self._base_cache[key] = np.full(self.beds.shape, base, dtype=np.float64)
        return self.ctx.drift.apply(name, vec, t) if name in self.ctx.drift.params else vec

    def admit(self, t: float) -> None:
        h, p, rng = self.h, self.p, self.adm_rng
        inc = np.clip(self.site_param("sepsis_incidence", h["sepsis_incidence"], t), 0, 1)
        a = self.acuity_share
        inc_hi = np.minimum(inc * h["high_acuity_sepsis_rr"], 1.0)
        lam = self.adm_rate
        rates = np.stack(
            [
                lam * (1 - a) * inc,
                lam * a * inc_hi,  # septic low / high acuity
                lam * (1 - a) * (1 - inc) * h["nonseptic_sample_fraction"],
                lam * a * (1 - inc_hi) * h["nonseptic_sample_fraction"],
            ]
        )
        counts = rng.poisson(rates)
        n_sites = len(lam)
        site = np.concatenate([np.repeat(np.arange(n_sites), c) for c in counts]).astype(np.int32)
        kinds = np.repeat(np.arange(4), counts.sum(axis=1))
        if len(site) == 0:
            return
        septic = kinds < 2
        acuity = (kinds % 2 == 1).astype(np.float32)
        weight = np.where(septic, 1.0, self.weight_non).astype(np.float32)
        mimic = self.site_param("mimic_rate", p["mimic_rate"], t)[site]
        mimic = np.minimum(mimic * np.where(acuity > 0, p["high_acuity_mimic_rr"], 1.0), 1.0)
        m0 = np.log(self.tr["mortality_at_onset"] / (1 - self.tr["mortality_at_onset"]))
        m0 = (
            m0
            + self.tr["high_acuity_mortality_logit"] * acuity
            + rng.normal(0.0, self.tr["mortality_heterogeneity_sd"], len(site))
        )
        self.cohort.admit(rng, t, site, septic, weight, acuity, p, {"mimic_rate": mimic, "m0_logit": m0})
        self.ctx.kpi.add("admissions", site, weight, int(t // 24))

    # --- the hour ----------------------------------------------------------------------------------------
    def screen(self, t: float, X: np.ndarray, sev: np.ndarray) -> None:
        """Standard care: shift-change screening (SIRS / qSOFA) and recognition of overt sepsis."""
        c, scr = self.cohort, self.scr
        a, n = c.a, c.n
        pending = a["septic"][:n] & np.isinf(a["recognised"][:n])
        if not pending.any():
            return
        hr, rr, temp, sbp, wbc, lac, alt = (X[:, i] for i in (0, 1, 2, 3, 5, 6, 7))
        recog = pending & (sev >= scr["overt_severity"])
        if int(t) % 24 in scr["shift_hours"]:
            qsofa = (rr >= 22).astype(int) + (sbp <= 100) + (alt > 0)
            sirs = ((temp > 38) | (temp < 36)).astype(int) + (hr > 90) + (rr > 20) + ((wbc > 12) | (wbc < 4))
            rule = scr["rule"]
            pos = {
                "qsofa": qsofa >= 2,
                "sirs": sirs >= 2,
                "qsofa_or_sirs_lactate": (qsofa >= 2) | ((sirs >= 2) & (lac >= 2.0)),
            }[rule]
            done = self.screen_rng.random(n) < scr["compliance"]
            recog |= pending & pos & done
        a["recognised"][:n] = np.where(recog, t, a["recognised"][:n])

    def oracle_scores(self, t: float, rows: np.ndarray) -> np.ndarray:
        a, m = self.cohort.a, self.m
        septic = a["septic"][rows]
        if m["oracle_alert_at"] == "onset":
            hit = septic & (t >= a["onset"][rows] - m["oracle_lead_hours"])
        else:
            hit = septic & (a["recognised"][rows] <= t)
        false = (~septic) & (self.oracle_rng.random(len(rows)) < m["oracle_false_alert_rate"])
        return (hit | false).astype(np.float32)

    def score_and_alert(self, t: float, X: np.ndarray) -> None:
        ctx, c, m = self.ctx, self.cohort, self.m
        a, n = c.a, c.n
        day = int(t // 24)
        site = a["site"][:n]
        septic = a["septic"][:n]
        # silent sites (monitor.silent_next_wave) are scored, monitored and collected, but raise no alerts
        rows = np.flatnonzero((ctx.live | ctx.silent)[site] & ~a["resolved"][:n] & (t < a["leave"][:n]))
        if len(rows) == 0:
            return
        if self.scorer is None:
            scores = self.oracle_scores(t, rows)
        elif self.models is None:
            scores = self.scorer.predict_proba(X[rows])
        else:
            scores = self.models.predict(X[rows], site[rows])
            self.models.collect(t, X, rows)
        s_site, w = site[rows], a["weight"][rows]
        if ctx.monitor is not None:
            ref = (ctx.wave[s_site] == 0) & (
                t - ctx.live_since[s_site] < 24.0 * ctx.monitor.cfg["reference_days"]
            )
            ctx.monitor.add_scores(s_site, scores, w, day, reference_mask=ref)
        neg = ~septic[rows]
        bins = np.minimum((scores[neg] * 200).astype(np.int64), 199)
        np.multiply(self.neg_hist, 0.999, out=self.neg_hist)  # ~6-week memory of negatives' scores
        np.add.at(self.neg_hist, (s_site[neg], bins), w[neg])
        if ctx.current_wave == 0:
            np.add.at(self.ref_neg_hist, bins[ctx.wave[s_site[neg]] == 0], w[neg][ctx.wave[s_site[neg]] == 0])
        on = ctx.live[s_site]
        if not on.all():
            rows, scores, s_site, w = rows[on], scores[on], s_site[on], w[on]
        pred = scores >= self.thr[s_site]
        tau = t - a["onset"][rows]
        self.utility.add(np.where(septic[rows], tau, 0.0), septic[rows], pred, w)
        # alerts: with a serving model, a prediction that is late, shed or timed out raises no alert this hour
        # (the patient can alert at the next hour's scoring if still above threshold)
        if self.serving is not None:
            pred = pred & self.serving.deliver(t, s_site, w)
        el = (
            pred
            & (t - a["alert_last"][rows] >= m["alert_suppress_hours"])
            & np.isinf(a["recognised"][rows])
            & np.isinf(a["treat_alert"][rows])
        )
        idx = rows[el]
        if len(idx) == 0:
            return
        a["alert_last"][idx] = t
        a["alert_first"][idx] = np.minimum(a["alert_first"][idx], t)
        is_true = a["septic"][idx] & (t >= a["onset"][idx] - self.tr["true_alert_window_hours"])
        a["alert_true_first"][idx] = np.where(
            is_true, np.minimum(a["alert_true_first"][idx], t), a["alert_true_first"][idx]
        )
        acted = self.act_rng.random(len(idx)) < ctx.adoption.p_act()[a["site"][idx]]
        treat = is_true & acted
        a["treat_alert"][idx] = np.where(
            treat, t + self.tr["alert_evaluation_hours"] + a["resp_h"][idx], a["treat_alert"][idx]
        )
        si, wi = a["site"][idx], a["weight"][idx].astype(np.float64)
        kpi = ctx.kpi
        kpi.add("alerts", si, wi, day)
        kpi.add("alerts_true", si[is_true], wi[is_true], day)
        kpi.add("alerts_false", si[~is_true], wi[~is_true], day)
        kpi.add("alerts_acted", si[acted], wi[acted], day)
        np.add.at(self.day_true, si[is_true], wi[is_true])
        np.add.at(self.day_false, si[~is_true], wi[~is_true])

    def resolve(self, t: float) -> None:
        """Settle septic patients once recognised and past onset + 3 h (end of the utility window)."""
        ctx, c, tr = self.ctx, self.cohort, self.tr
        a, n = c.a, c.n
        done = (
            a["septic"][:n]
            & ~a["resolved"][:n]
            & np.isfinite(a["recognised"][:n])
            & (t >= a["onset"][:n] + 3)
        )
        idx = np.flatnonzero(done)
        if len(idx) == 0:
            return
        a["resolved"][idx] = True
        onset, recog, resp = a["onset"][idx], a["recognised"][idx], a["resp_h"][idx]
        treat_cf = recog + resp
        treat = np.minimum(treat_cf, a["treat_alert"][idx])
        cap = tr["max_delay_hours"]
        delay, delay_cf = np.clip(treat - onset, 0, cap), np.clip(treat_cf - onset, 0, cap)
        m0 = a["m0_logit"][idx]
        p, p_cf = _expit(m0 + self.log_or * delay), _expit(m0 + self.log_or * delay_cf)
        u = self.death_rng.random(len(idx))
        site = a["site"][idx]
        live = ctx.live[site] & (ctx.live_since[site] <= onset)
        early = live & (a["alert_true_first"][idx] < recog) & (a["treat_alert"][idx] < treat_cf)
        day, kpi = int(t // 24), ctx.kpi
        for name, val in (
            ("septic_cases", 1.0),
            ("deaths_expected", p),
            ("deaths_expected_cf", p_cf),
            ("deaths", (u < p) * 1.0),
            ("deaths_cf", (u < p_cf) * 1.0),
            ("treat_delay_h", delay),
            ("treat_delay_cf_h", delay_cf),
        ):
            kpi.add(name, site, val, day)
            if name not in {"treat_delay_h", "treat_delay_cf_h"}:
                kpi.add("live_" + name, site[live], (np.broadcast_to(val, p.shape))[live], day)
        kpi.add("caught_early", site[early], 1.0, day)
        lead = recog - a["alert_true_first"][idx]
        self.lead_times.append(lead[live & (lead > 0)])
        for k, v in (
            ("site", site),
            ("onset", onset),
            ("admit", a["admit"][idx]),
            ("m0", m0),
            ("recognised", recog),
            ("treat", treat),
            ("delay", delay),
            ("delay_cf", delay_cf),
            ("p", p),
            ("p_cf", p_cf),
            ("live", live),
            ("alert_true_first", a["alert_true_first"][idx]),
        ):
            self.outcomes[k].append(np.array(v))

    def end_of_day(self, t: float) -> None:
        ctx = self.ctx
        day = int(t // 24)
        ctx.adoption.daily_update(ctx.live, self.day_true, self.day_false, self.nurse_shifts_per_day)
        if ctx.monitor is not None:
            ctx.monitor.add_alert_outcomes(self.day_true, self.day_false, day)
        ctx.kpi.set_max("p_act", np.where(ctx.live, ctx.adoption.p_act(), 0.0), day)
        self.day_true[:] = 0
        self.day_false[:] = 0

    def recalibrate(self, site: int) -> None:
        """Re-fit a site's threshold so its recent non-septic alert-level exceedance matches the pilot's."""
        thr = self.matched_threshold(self.neg_hist[site])
        if thr is not None:
            self.thr[site] = thr

    def matched_threshold(self, neg_hist: np.ndarray) -> np.float32 | None:
        """The threshold at which the non-septic score histogram ``neg_hist`` (200 bins on [0, 1]) exceeds as
        often as the pilot's non-septic scores exceeded the scenario's threshold; None without data."""
        return monitor.matched_threshold(self.ref_neg_hist, self.m["threshold"], neg_hist)

    def process(self) -> Generator:
        ctx, c, p = self.ctx, self.cohort, self.p
        env = ctx.env
        while True:
            t = env.now
            day = int(t // 24)
            if ctx.monitor is not None and int(t) % 24 == 0:
                ctx.monitor.start_day(day)
            self.admit(t)
            n = c.n
            if n:
                site = c.a["site"][:n]
                offs = np.column_stack(
                    [
                        self.site_param(k, 0.0, t)[site]
                        for k in ("hr_offset", "rr_offset", "temp_offset", "sbp_offset")
                    ]
                    + [np.zeros(n)]
                )
                signal = self.site_param("preonset_signal", 1.0, t)[site]
                missing = np.clip(self.site_param("missing_lab_rate", 0.0, t)[site], 0, 1)
                X, sev = c.step(self.phys_rng, t, offs, signal, p["lab_interval_hours"], missing)
                self.screen(t, X, sev)
                self.score_and_alert(t, X)
                self.resolve(t)
                a = c.a
                present = t < a["leave"][:n]
                pd_w = np.where(present, a["weight"][:n] / 24.0, 0.0)
                ctx.kpi.add("patient_days", site, pd_w, day)
                on = ctx.live[site]
                ctx.kpi.add("live_patient_days", site[on], pd_w[on], day)
                gone = a["resolved"][:n] | (t + 1 >= a["leave"][:n])
                if gone.sum() > 0.1 * n:  # compact in batches; gone patients are masked out until then
                    c.keep(~gone)
            if int(t) % 24 == 23:
                self.end_of_day(t)
            yield env.timeout(1.0)
