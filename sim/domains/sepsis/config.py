"""The sepsis domain's scenario sections (rules as data). Sources belong in the scenario file."""

from __future__ import annotations

from sim.schema import Rule

HOSPITALS = {
    "count": Rule("int", 172, min=1, max=2000, doc="hospitals in the system (HCA: 164-173 with SPOT)"),
    "beds_median": Rule("float", 200.0, min=10, doc="median staffed beds"),
    "beds_sigma": Rule("float", 0.5, min=0, max=2, doc="log-sd of beds across hospitals"),
    "beds_min": Rule("float", 40.0, min=1),
    "beds_max": Rule("float", 1000.0, min=1),
    "occupancy": Rule("float", 0.7, min=0.05, max=1.0, doc="share of beds occupied"),
    "high_acuity_share_min": Rule("float", 0.10, min=0, max=1, doc="case mix: share of high-acuity patients"),
    "high_acuity_share_max": Rule("float", 0.35, min=0, max=1),
    "sepsis_incidence": Rule(
        "float", 0.035, min=0, max=0.5, doc="share of low-acuity admissions that become septic"
    ),
    "high_acuity_sepsis_rr": Rule("float", 2.5, min=1, max=20, doc="relative risk of sepsis if high acuity"),
    "patients_per_nurse": Rule("float", 5.0, min=1, max=20, doc="ward staffing; sets alerts per nurse-shift"),
    "nonseptic_sample_fraction": Rule(
        "float",
        0.05,
        min=0.001,
        max=1.0,
        doc="share of non-septic admissions simulated; each has weight 1/fraction",
    ),
    "source": Rule("str", ""),
}

PATIENTS = {
    "los_hours_median": Rule("float", 96.0, min=6, doc="median length of stay (non-septic), hours"),
    "los_sigma": Rule("float", 0.6, min=0, max=3),
    "onset_min_hours": Rule("float", 2.0, min=0, doc="earliest onset after admission"),
    "onset_gamma_shape": Rule("float", 1.2, min=0.1),
    "onset_gamma_scale_hours": Rule("float", 30.0, min=0.1, doc="onset after admission ~ min + Gamma"),
    "preonset_hours_min": Rule(
        "float", 6.0, min=0.5, doc="deterioration starts this long before onset (min)"
    ),
    "preonset_hours_max": Rule("float", 30.0, min=0.5),
    "post_onset_ramp_hours_min": Rule(
        "float", 4.0, min=0.5, doc="hours for severity to rise by 1 after onset"
    ),
    "post_onset_ramp_hours_max": Rule("float", 12.0, min=0.5),
    "hypothermic_share": Rule("float", 0.15, min=0, max=1),
    "leukopenic_share": Rule("float", 0.1, min=0, max=1),
    "mimic_rate": Rule(
        "float", 0.25, min=0, max=1, doc="share of non-septic patients with a sepsis-like episode"
    ),
    "high_acuity_mimic_rr": Rule("float", 1.6, min=1, max=10),
    "lab_interval_hours": Rule("float", 12.0, min=1, max=72, doc="hours between lab draws (WBC, lactate)"),
    "response_hours_mean": Rule("float", 1.0, min=0, doc="recognition to antibiotics, mean (gamma k=2)"),
    "source": Rule("str", ""),
}

SCREENING = {
    "shift_hours": Rule(
        "list[int]", [7, 19], min=0, max=23, min_len=1, doc="hours of day of nurse screening"
    ),
    "compliance": Rule("float", 0.8, min=0, max=1, doc="probability a due screen is done and acted on"),
    "rule": Rule(
        "str",
        "qsofa_or_sirs_lactate",
        choices=("qsofa", "sirs", "qsofa_or_sirs_lactate"),
        doc="screening rule at shift change",
    ),
    "overt_severity": Rule(
        "float", 2.2, min=0.5, max=3, doc="severity at which sepsis is recognised at once"
    ),
    "source": Rule("str", ""),
}

TREATMENT = {
    "mortality_at_onset": Rule("float", 0.09, min=0.001, max=0.99, doc="risk if antibiotics start at onset"),
    "high_acuity_mortality_logit": Rule("float", 0.7, min=0, max=5),
    "mortality_heterogeneity_sd": Rule(
        "float", 0.6, min=0, max=3, doc="sd of patient risk on the logit scale"
    ),
    "mortality_odds_per_hour": Rule("float", 1.06, min=1.0, max=1.5, doc="odds ratio per hour of delay"),
    "max_delay_hours": Rule("float", 48.0, min=1, doc="delays are capped here"),
    "alert_evaluation_hours": Rule("float", 0.2, min=0, max=24, doc="alert to bedside evaluation"),
    "true_alert_window_hours": Rule(
        "float",
        12.0,
        min=0,
        max=72,
        doc="an alert this close to onset (or after) finds sepsis; earlier finds nothing",
    ),
    "source": Rule("str", ""),
}

MODEL = {
    "kind": Rule(
        "str",
        "onnx",
        choices=("onnx", "oracle"),
        doc="onnx: LightGBM exported to ONNX, scored by onnxruntime; oracle: a rule for mechanism tests",
    ),
    "threshold": Rule("float", 0.3, min=0, max=1, doc="alert when the hourly probability reaches this"),
    "alert_suppress_hours": Rule("float", 24.0, min=0, doc="no repeat alert for a patient within this"),
    "train_seed": Rule(
        "int", 2016, min=0, doc="seed of the development cohort and LightGBM (one model per seed)"
    ),
    "train_septic_patients": Rule("int", 3000, min=50),
    "train_nonseptic_patients": Rule("int", 6000, min=50),
    "train_max_hours": Rule("int", 168, min=12, max=1000),
    "label_lead_hours": Rule(
        "float", 6.0, min=0, max=48, doc="label = 1 from onset minus this (PhysioNet: 6)"
    ),
    "n_trees": Rule("int", 80, min=1, max=5000),
    "num_leaves": Rule("int", 15, min=2, max=1024),
    "learning_rate": Rule("float", 0.1, min=1e-4, max=1),
    "threads": Rule("int", 1, min=1, max=64, doc="onnxruntime intra-op threads inside the simulation"),
    "oracle_alert_at": Rule(
        "str",
        "onset",
        choices=("onset", "recognition"),
        doc="oracle: alert at onset - oracle_lead_hours, or at recognition (zero lead)",
    ),
    "oracle_lead_hours": Rule("float", 0.0, min=0, max=48),
    "oracle_false_alert_rate": Rule(
        "float", 0.0, min=0, max=1, doc="oracle: false alert probability per hour"
    ),
    "source": Rule("str", ""),
}

SCHEMA = {
    "hospitals": HOSPITALS,
    "patients": PATIENTS,
    "screening": SCREENING,
    "treatment": TREATMENT,
    "model": MODEL,
}

DRIFTABLE = {
    "mimic_rate": "case mix: share of non-septic patients with sepsis-like episodes (covariate shift)",
    "hr_offset": "heart rate offset, bpm (covariate shift, e.g. different population or device)",
    "rr_offset": "respiratory rate offset, /min",
    "temp_offset": "temperature offset, deg C (a unit change of a feed shows up here)",
    "sbp_offset": "systolic blood pressure offset, mmHg",
    "sepsis_incidence": "share of admissions that become septic (prior shift)",
    "preonset_signal": "how much deterioration shows before onset, 1 = as trained (concept shift)",
    "missing_lab_rate": "probability a scheduled lab draw is missing (data fault; values carried forward)",
}
