"""Inpatient physiology for the sepsis case study: a cohort of patients with hourly vitals and labs.

Every patient has a baseline (vitals drawn around adult ward norms, shifted by acuity), AR(1) measurement
and physiological noise, and labs (WBC, lactate) measured every ``lab_interval_hours`` and carried forward.
A septic patient deteriorates before onset: severity ``s`` rises from 0 at ``onset - preonset_hours`` to
``preonset_signal`` at onset (as ``ramp**2.5``) and keeps rising after onset, ``1 + (t - onset) / post_ramp``.
A non-septic patient may have a "mimic" episode (post-operative inflammation, dehydration ...): a transient
bump in heart rate, respiration, temperature and WBC that looks like early sepsis but spares lactate,
blood pressure and mentation. Vitals = baseline + drift offsets + effect x s + mimic effect x m + noise.

The same :class:`Cohort` steps patients in the simulation and generates the model's training data, so the
features the model is trained on are the features it is scored on.
"""

from __future__ import annotations

import numpy as np

FEATURES = [
    "hr",
    "rr",
    "temp",
    "sbp",
    "spo2",
    "wbc",
    "lactate",
    "altered_mentation",
    "d_hr_6h",
    "d_rr_6h",
    "d_temp_6h",
    "d_sbp_6h",
    "hours_since_admission",
    "high_acuity",
]
N_FEATURES = len(FEATURES)
# vitals with AR(1) noise, in this order
VITALS = ["hr", "rr", "temp", "sbp", "spo2"]
NOISE_SD = np.array([6.0, 1.8, 0.25, 9.0, 1.0])
NOISE_PHI = 0.7
# per unit of severity (septic) and of mimic intensity
SEPSIS_EFFECT = np.array([22.0, 6.0, 1.3, -18.0, -2.5])
MIMIC_EFFECT = np.array([20.0, 5.0, 1.2, -10.0, -1.2])

_FIELDS = {
    "site": np.int32,
    "weight": np.float32,
    "septic": bool,
    "acuity": np.float32,
    "admit": np.float64,
    "leave": np.float64,
    "onset": np.float64,
    "pre_h": np.float64,
    "post_ramp": np.float64,
    "hypo": bool,
    "leukopenic": bool,
    "ment_thr": np.float32,
    "mimic_t": np.float64,
    "mimic_w": np.float64,
    "mimic_peak": np.float32,
    "resp_h": np.float64,
    "m0_logit": np.float64,
    "next_lab": np.float64,
    "wbc0": np.float32,
    "lac0": np.float32,
    "wbc": np.float32,
    "lac": np.float32,
    # care pathway state
    "recognised": np.float64,
    "alert_first": np.float64,
    "alert_true_first": np.float64,
    "alert_last": np.float64,
    "treat_alert": np.float64,
    "resolved": bool,
}


class Cohort:
    """Struct-of-arrays of the active patients; grows by doubling and compacts on demand."""

    def __init__(self, capacity: int = 1024):
        self.n = 0
        self.cap = capacity
        self.a = {k: np.zeros(capacity, dtype=t) for k, t in _FIELDS.items()}
        self.base = np.zeros((capacity, len(VITALS)), dtype=np.float64)
        self.noise = np.zeros((capacity, len(VITALS)), dtype=np.float64)
        self.hist = np.zeros((6, capacity, 4), dtype=np.float64)  # hr, rr, temp, sbp of the last 6 hours

    def _grow(self, need: int) -> None:
        cap = self.cap
        while cap < need:
            cap *= 2
        if cap == self.cap:
            return
        for k, v in self.a.items():
            new = np.zeros(cap, dtype=v.dtype)
            new[: self.n] = v[: self.n]
            self.a[k] = new
        for name in ("base", "noise"):
            old = getattr(self, name)
            new = np.zeros((cap, old.shape[1]))
            new[: self.n] = old[: self.n]
            setattr(self, name, new)
        hist = np.zeros((6, cap, 4))
        hist[:, : self.n] = self.hist[:, : self.n]
        self.hist, self.cap = hist, cap

    def keep(self, mask: np.ndarray) -> None:
        """Keep only the patients where ``mask`` (length n) is true, preserving order."""
        idx = np.flatnonzero(mask)
        m = len(idx)
        for v in self.a.values():
            v[:m] = v[idx]
        self.base[:m] = self.base[idx]
        self.noise[:m] = self.noise[idx]
        self.hist[:, :m] = self.hist[:, idx]
        self.n = m

    def admit(  # noqa: PLR0917
        self,
        rng: np.random.Generator,
        t: float,
        site: np.ndarray,
        septic: np.ndarray,
        weight: np.ndarray,
        acuity: np.ndarray,
        p: dict,
        offsets: dict[str, np.ndarray],
    ) -> None:
        """Admit patients at hour ``t``. ``p`` is the ``[patients]`` section; ``offsets`` per patient."""
        k = len(site)
        if k == 0:
            return
        self._grow(self.n + k)
        s = slice(self.n, self.n + k)
        a = self.a
        a["site"][s], a["septic"][s], a["weight"][s], a["acuity"][s] = site, septic, weight, acuity
        a["admit"][s] = t
        los = rng.lognormal(np.log(p["los_hours_median"]), p["los_sigma"], k)
        onset_off = p["onset_min_hours"] + rng.gamma(p["onset_gamma_shape"], p["onset_gamma_scale_hours"], k)
        a["onset"][s] = np.where(septic, t + onset_off, np.inf)
        a["leave"][s] = np.where(septic, np.inf, t + los)
        a["pre_h"][s] = rng.uniform(p["preonset_hours_min"], p["preonset_hours_max"], k)
        a["post_ramp"][s] = rng.uniform(p["post_onset_ramp_hours_min"], p["post_onset_ramp_hours_max"], k)
        a["hypo"][s] = rng.random(k) < p["hypothermic_share"]
        a["leukopenic"][s] = rng.random(k) < p["leukopenic_share"]
        a["ment_thr"][s] = 1.0 + 0.8 * rng.random(k)
        has_mimic = (~septic) & (rng.random(k) < offsets["mimic_rate"])
        a["mimic_t"][s] = np.where(has_mimic, t + rng.uniform(0, 1, k) * np.minimum(los, 96.0), np.inf)
        a["mimic_w"][s] = rng.uniform(3.0, 12.0, k)
        a["mimic_peak"][s] = rng.uniform(0.4, 1.1, k)
        a["resp_h"][s] = rng.gamma(2.0, p["response_hours_mean"] / 2.0, k)
        a["m0_logit"][s] = offsets["m0_logit"]
        base = np.column_stack(
            [
                rng.normal(82.0 + 5.0 * acuity, 11.0),
                rng.normal(17.0 + 1.0 * acuity, 2.2),
                rng.normal(36.9, 0.35, k),
                rng.normal(124.0 - 6.0 * acuity, 16.0),
                rng.normal(96.5 - 0.5 * acuity, 1.5),
            ]
        )
        self.base[s] = base
        self.noise[s] = rng.normal(0.0, 1.0, (k, len(VITALS))) * NOISE_SD
        a["wbc0"][s] = rng.lognormal(np.log(8.0), 0.3, k)
        a["lac0"][s] = rng.lognormal(np.log(1.1), 0.3, k)
        a["wbc"][s], a["lac"][s] = a["wbc0"][s], a["lac0"][s]
        a["next_lab"][s] = t
        for name in ("recognised", "alert_first", "alert_true_first", "alert_last", "treat_alert"):
            a[name][s] = np.inf
        a["alert_last"][s] = -np.inf
        a["resolved"][s] = False
        self.hist[:, s] = np.nan
        self.n += k

    def severity(self, t: float, preonset_signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sepsis severity and mimic intensity of the active patients at hour ``t``."""
        a, n = self.a, self.n
        onset, pre_h = a["onset"][:n], a["pre_h"][:n]
        ramp = np.clip((t - (onset - pre_h)) / pre_h, 0.0, 1.0)
        after = 1.0 + (t - onset) / a["post_ramp"][:n]
        sev = np.where(t < onset, preonset_signal * ramp**2.5, after)
        sev = np.where(a["septic"][:n], np.minimum(sev, 3.0), 0.0)
        mim = a["mimic_peak"][:n] * np.exp(-0.5 * ((t - a["mimic_t"][:n]) / a["mimic_w"][:n]) ** 2)
        return sev, np.nan_to_num(mim)

    def step(  # noqa: PLR0917
        self,
        rng: np.random.Generator,
        t: float,
        vital_offsets: np.ndarray,
        preonset_signal: np.ndarray,
        lab_interval: float,
        missing_lab: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Advance one hour: returns (features float32 [n, N_FEATURES], severity [n]).

        ``vital_offsets`` [n, 5] are drift offsets per patient; ``preonset_signal`` and ``missing_lab`` per
        patient.
        """
        a, n = self.a, self.n
        sev, mim = self.severity(t, preonset_signal)
        phi = NOISE_PHI
        self.noise[:n] = phi * self.noise[:n] + np.sqrt(1 - phi**2) * NOISE_SD * rng.normal(
            size=(n, len(VITALS))
        )
        eff = SEPSIS_EFFECT[None, :] * sev[:, None]
        eff[:, 2] = np.where(a["hypo"][:n], -0.8 * eff[:, 2], eff[:, 2])
        vit = self.base[:n] + vital_offsets + eff + MIMIC_EFFECT[None, :] * mim[:, None] + self.noise[:n]
        vit[:, 4] = np.minimum(vit[:, 4], 100.0)
        # labs: measured on schedule (unless the draw is missing), carried forward
        due = t >= a["next_lab"][:n]
        measured = due & (rng.random(n) >= missing_lab)
        wbc_true = a["wbc0"][:n] * np.where(
            a["leukopenic"][:n], 1 - 0.35 * np.minimum(sev, 1.5), 1 + 0.7 * sev + 0.6 * mim
        )
        lac_true = a["lac0"][:n] + 1.4 * sev + 0.5 * mim
        a["wbc"][:n] = np.where(measured, wbc_true * rng.lognormal(0, 0.08, n), a["wbc"][:n])
        a["lac"][:n] = np.where(measured, lac_true * rng.lognormal(0, 0.08, n), a["lac"][:n])
        a["next_lab"][:n] = np.where(due, t + lab_interval, a["next_lab"][:n])
        altered = (sev > a["ment_thr"][:n]).astype(np.float32)
        slot = int(t) % 6  # holds the values written 6 hours ago
        cur4 = vit[:, :4]
        past = self.hist[slot, :n].copy()
        new = np.isnan(past[:, 0])
        if new.any():  # first hour of a stay: all slots start at the admission values, deltas at 0
            self.hist[:, np.flatnonzero(new)] = cur4[new][None]
            past[new] = cur4[new]
        self.hist[slot, :n] = cur4
        X = np.empty((n, N_FEATURES), dtype=np.float32)
        X[:, :5] = vit
        X[:, 5] = a["wbc"][:n]
        X[:, 6] = a["lac"][:n]
        X[:, 7] = altered
        X[:, 8:12] = cur4 - past
        X[:, 12] = t - a["admit"][:n]
        X[:, 13] = a["acuity"][:n]
        return X, sev
