"""C-MAPSS-like degradation of vans or machines, one daily sensor window per unit, vectorised.

A unit lives a sequence of *lives* (between component replacements). Life ``k`` of unit ``i`` has an
initial wear ``d0 ~ U(0, initial_wear_max)``, a failure mode (by ``share``) and a life multiplier
``m ~ LogNormal(0, life_sd)``. Damage grows exponentially (steepness ``beta``) from ``d0`` to 1, when the
unit fails; in closed form, with ``T`` the life length in days,

    d(tau) = -ln(exp(-beta d0) - tau / T * (exp(-beta d0) - exp(-beta))) / beta,
    T = life_days_median * type.life_scale * m * (exp(-beta d0) - exp(-beta)) / (1 - exp(-beta)).

The first life starts mid-way (a random share of it already used), so failures are spread from day 0. Sudden
failures (no precursor) arrive at ``sudden_failures_per_year`` and do not end a life. Lives are drawn up
front per unit (``Lives``), so the arm with the alert path and the arm without it share every life's
parameters (common random numbers) even when their replacement times differ.

Sensors (in noise-sd units, after the pipeline removed the known operating-condition baselines):
``s = type.offset + unit offset + signature(mode, type) * visibility[condition] * sig(d) + noise``, with
``sig(d) = clip((d - onset) / (1 - onset), 0, 1) ** 2``; faults show more under heavy duty (visibility 0.6 to
1.4 across conditions). The pipeline also subtracts the sensor offsets of the machine type its model was
trained on; features are a fast and a slow EWMA of each sensor, their difference, and the operating
condition (``feature_names``).
"""

from __future__ import annotations

import numpy as np

from sim.schema import Rule

MODE_SCHEMA = {
    "name": Rule("str"),
    "share": Rule("float", min=0, max=1, doc="share of lives ending in this mode"),
    "amplitude": Rule("float", 3.0, min=0, max=50, doc="signature at failure, in sensor-noise sd units"),
    "sensors": Rule("list[int]", [0], min=0, max=63, min_len=1, doc="sensors that respond to this mode"),
    "onset": Rule("float", 0.7, min=0, max=0.99, doc="damage at which the signature starts to show"),
}

TYPE_SCHEMA = {
    "name": Rule("str"),
    "offset_sd": Rule(
        "float", 0.0, min=0, max=20, doc="sd of the type's sensor baseline offsets (noise units)"
    ),
    "signature_mix": Rule(
        "float", 0.0, min=0, max=1, doc="0: modes show on the reference sensors; 1: on others"
    ),
    "life_scale": Rule("float", 1.0, min=0.05, max=20, doc="multiplies life_days_median"),
    "sudden_scale": Rule("float", 1.0, min=0, max=20, doc="multiplies sudden_failures_per_year"),
    "seed": Rule("int", 0, min=0, doc="fixes the type's offsets and signature permutation"),
}

DEGRADATION = {
    "sensors": Rule("int", 6, min=2, max=64, doc="sensor channels per unit"),
    "conditions": Rule("int", 3, min=1, max=12, doc="operating conditions (duty / product mix)"),
    "unit_offset_sd": Rule("float", 0.5, min=0, max=20, doc="unit-to-unit sensor baseline variation"),
    "noise_sd": Rule("float", 1.0, min=0.01, max=20, doc="daily sensor noise sd"),
    "life_days_median": Rule("float", 900.0, min=1, doc="median life from new, days"),
    "life_sd": Rule("float", 0.4, min=0, max=3, doc="log-sd of the life multiplier"),
    "beta": Rule("float", 4.0, min=0.1, max=20, doc="steepness of the exponential degradation"),
    "initial_wear_max": Rule("float", 0.3, min=0, max=0.95, doc="new component's initial wear ~ U(0, max)"),
    "sudden_failures_per_year": Rule(
        "float", 0.2, min=0, max=50, doc="failures without precursor per unit-year"
    ),
    "ewma_fast": Rule("float", 0.4, min=0.01, max=1, doc="weight of today's reading in the fast EWMA"),
    "ewma_slow": Rule("float", 0.03, min=0.001, max=1, doc="weight of today's reading in the slow EWMA"),
    "modes": Rule("tables", [], item_schema=MODE_SCHEMA, doc="failure modes with a precursor"),
    "drift_sensors": Rule(
        "list[int]",
        [],
        min=0,
        max=63,
        doc="channels the sensor_offset / sensor_gain drifts act on ([]: every channel)",
    ),
    "source": Rule("str", ""),
}

#: generator parameters a ``[[drift]]`` entry can shift per site (both maintenance domains declare them)
SENSOR_DRIFTABLE = {
    "sensor_offset": "added to the readings of the degradation.drift_sensors channels, in noise-sd units "
    "(base 0): a recalibrated or replaced sensor, a new supplier's part, a firmware update moving the zero",
    "sensor_gain": "multiplies the readings of the degradation.drift_sensors channels (base 1; op 'mul' or "
    "'add'): a firmware update or sensor that reports in other units",
    "signature_scale": "multiplies every failure mode's sensor signature (base 1): concept drift, e.g. parts "
    "from a new supplier or a changed duty whose wear shows weaker (< 1) or stronger (> 1) before failure",
}

#: the generator's fixed constants (seeded once; identical in training and simulation)
_CONST_SEED = 20_080_925


def feature_names(n_sensors: int) -> list[str]:
    s = range(n_sensors)
    return [f"fast_{j}" for j in s] + [f"slow_{j}" for j in s] + [f"trend_{j}" for j in s] + ["condition"]


class TypeParams:
    """Per machine type: sensor offsets (T, S), signatures (T, M, S), life and sudden-failure scales;
    per condition: signature visibility."""

    def __init__(self, cfg: dict, types: list[dict]):
        s, modes = cfg["sensors"], cfg["modes"]
        ref = np.zeros((len(modes), s))
        for m, mode in enumerate(modes):
            idx = [j % s for j in mode["sensors"]]
            ref[m, idx] = mode["amplitude"] / np.sqrt(len(idx))
        self.offset = np.zeros((len(types), s))
        self.signature = np.zeros((len(types), len(modes), s))
        for t, ty in enumerate(types):
            rng = np.random.default_rng([_CONST_SEED, ty["seed"]])
            self.offset[t] = rng.normal(0.0, ty["offset_sd"], s) if ty["offset_sd"] > 0 else 0.0
            perm = rng.permutation(s)
            mix = ty["signature_mix"]
            self.signature[t] = np.sqrt(1 - mix) * ref + np.sqrt(mix) * ref[:, perm]
        self.life_scale = np.array([ty["life_scale"] for ty in types])
        self.sudden_scale = np.array([ty["sudden_scale"] for ty in types])
        self.onset = np.array([m["onset"] for m in modes])
        # faults show more under heavy duty: signature visibility per operating condition (0.6 .. 1.4)
        c = cfg["conditions"]
        self.visibility = np.linspace(0.6, 1.4, c) if c > 1 else np.ones(1)


class Lives:
    """Pre-drawn parameters of up to ``k_max`` lives per unit (life index wraps beyond it)."""

    def __init__(
        self, cfg: dict, tp: TypeParams, unit_type: np.ndarray, k_max: int, rng: np.random.Generator
    ):
        n = len(unit_type)
        shares = np.array([m["share"] for m in cfg["modes"]], dtype=float)
        self.k_max = k_max
        self.d0 = rng.uniform(0.0, cfg["initial_wear_max"], (n, k_max))
        self.mode = rng.choice(len(shares), size=(n, k_max), p=shares / shares.sum())
        mult = rng.lognormal(0.0, cfg["life_sd"], (n, k_max))
        b = cfg["beta"]
        frac = (np.exp(-b * self.d0) - np.exp(-b)) / (1 - np.exp(-b))
        self.length = cfg["life_days_median"] * tp.life_scale[unit_type][:, None] * mult * frac
        self.first_used = rng.random(n)  # share of the first life already used at day 0
        self.beta = b

    def get(self, units: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        kk = k % self.k_max
        return self.d0[units, kk], self.mode[units, kk], self.length[units, kk]

    def damage(self, d0: np.ndarray, length: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """Damage ``tau`` days into lives of ``length`` days starting at ``d0`` (clipped to [d0, 1])."""
        b = self.beta
        e0 = np.exp(-b * d0)
        frac = np.clip(tau / length, 0.0, 1.0)
        return -np.log(e0 - frac * (e0 - np.exp(-b))) / b


class SensorState:
    """Per-unit sensor pipeline state (EWMAs of condition-corrected readings) and the daily feature rows."""

    def __init__(
        self, cfg: dict, tp: TypeParams, unit_type: np.ndarray, duty: np.ndarray, rng: np.random.Generator
    ):
        n, s = len(unit_type), cfg["sensors"]
        self.cfg, self.tp, self.unit_type = cfg, tp, unit_type
        self.unit_offset = rng.normal(0.0, cfg["unit_offset_sd"], (n, s))
        self.duty_cum = np.cumsum(duty, axis=1)  # per-unit operating-condition probabilities
        self.fast = np.full((n, s), np.nan)
        self.slow = np.full((n, s), np.nan)
        self.norm_offset = tp.offset[np.zeros(n, dtype=np.int64)]  # what the pipeline subtracts (per unit)
        self.cond = np.zeros(n, dtype=np.int64)

    def set_reference_type(self, units: np.ndarray, type_index: int) -> None:
        """The model serving ``units`` was trained on ``type_index``: normalise by that type's offsets."""
        self.norm_offset[units] = self.tp.offset[type_index]

    def step(
        self,
        rng: np.random.Generator,
        units: np.ndarray,
        d: np.ndarray,
        mode: np.ndarray,
        drift: dict[str, np.ndarray] | None = None,
    ) -> None:
        """One day of readings for ``units`` with damage ``d`` and life mode ``mode``; updates the EWMAs.

        ``drift`` (optional): per-unit values of ``sensor_offset``, ``sensor_gain`` and ``signature_scale``
        (see ``SENSOR_DRIFTABLE``); the gain and offset act on ``drift_sensors``: ``raw * gain + offset``.
        """
        tp, cfg = self.tp, self.cfg
        ty = self.unit_type[units]
        cond = (rng.random(len(units))[:, None] > self.duty_cum[units, :-1]).sum(axis=1)
        sig = np.clip((d - tp.onset[mode]) / (1.0 - tp.onset[mode]), 0.0, 1.0) ** 2 * tp.visibility[cond]
        noise = rng.standard_normal((len(units), cfg["sensors"])) * cfg["noise_sd"]
        if drift and "signature_scale" in drift:
            sig = sig * drift["signature_scale"]
        raw = tp.offset[ty] + self.unit_offset[units] + tp.signature[ty, mode] * sig[:, None] + noise
        if drift and ("sensor_gain" in drift or "sensor_offset" in drift):
            ch = [j % cfg["sensors"] for j in cfg.get("drift_sensors", [])] or list(range(cfg["sensors"]))
            gain = drift.get("sensor_gain", np.ones(len(units)))[:, None]
            off = drift.get("sensor_offset", np.zeros(len(units)))[:, None]
            raw[:, ch] = raw[:, ch] * gain + off
        f, sl = self.fast[units], self.slow[units]
        new = np.isnan(f[:, 0])
        f = np.where(new[:, None], raw, f + cfg["ewma_fast"] * (raw - f))
        sl = np.where(new[:, None], raw, sl + cfg["ewma_slow"] * (raw - sl))
        self.fast[units], self.slow[units], self.cond[units] = f, sl, cond

    def features(self, units: np.ndarray) -> np.ndarray:
        """float32 feature rows ``[fast - ref, slow - ref, fast - slow, condition]`` for ``units``."""
        f, sl, o = self.fast[units], self.slow[units], self.norm_offset[units]
        X = np.empty((len(units), 3 * f.shape[1] + 1), dtype=np.float32)
        s = f.shape[1]
        X[:, :s] = f - o
        X[:, s : 2 * s] = sl - o
        X[:, 2 * s : 3 * s] = f - sl
        X[:, -1] = self.cond[units]
        return X


def duty_profiles(n: int, conditions: int, concentration: float, rng: np.random.Generator) -> np.ndarray:
    """Per-unit operating-condition probabilities ~ Dirichlet(concentration)."""
    return rng.dirichlet(np.full(conditions, concentration), size=n)
