"""Sweep specs: parse and validate a TOML spec, and generate its experiment design.

A spec names a base scenario, parameter axes, the KPIs of interest and the replications::

    [sweep]
    name = "sepsis_levers"
    base = "../sepsis_spot.toml"      # relative to the spec file
    root_seed = 20251125              # replication seeds and design samples all derive from it
    replications = 5
    design = "grid"                   # grid | zip | lhs | sobol | morris
    samples = 16                      # lhs: points; sobol: base rows N (power of 2); morris: trajectories
    kpis = ["deaths_averted"]         # headline KPIs to keep (empty: all)
    [sweep.fixed]                     # overrides applied to every point
    "hospitals.count" = 4
    [[axis]]
    param = "model.threshold"
    values = [0.1, 0.2, 0.3]          # or: range = {start = 0.1, stop = 0.5, step = 0.1} (or num = 5)
    [[axis]]                          # sampled designs (lhs, sobol, morris) take bounds instead:
    param = "adoption.act_logit_base"
    low = 0.0
    high = 3.0

Every problem raises :class:`sim.errors.ScenarioError` (exit 2) naming the spec file, the key and the bad
value, before anything runs. Replication seeds are ``sim.rng.replication_seeds(root_seed, replications)``;
the same seeds are used at every point (common random numbers), so differences between points are not
blurred by different random draws.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import ScenarioError
from sim.rng import Streams, replication_seeds
from sim.scenario import Scenario, apply_overrides, load_scenario

DESIGNS = ("grid", "zip", "lhs", "sobol", "morris")
SAMPLED = ("lhs", "sobol", "morris")
SWEEP_KEYS = {"name", "base", "description", "root_seed", "replications", "design", "samples", "levels",
              "kpis", "fixed"}
AXIS_KEYS = {"param", "values", "range", "low", "high"}
MAX_RUNS = 10_000_000


@dataclass(frozen=True)
class Axis:
    """One swept parameter: discrete ``values`` (grid, zip) or bounds ``low``..``high`` (sampled designs)."""

    param: str
    kind: str  # "int" | "float" | "bool" | "str": the type of the base scenario's value
    values: tuple = ()
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep spec (see the module docstring); ``raw`` is the resolved content that is hashed."""

    source: str
    name: str
    base_path: Path
    description: str
    root_seed: int
    replications: int
    design: str
    samples: int
    levels: int
    kpis: tuple[str, ...]
    fixed: dict = field(hash=False)
    axes: tuple[Axis, ...] = ()
    raw: dict = field(default_factory=dict, hash=False, repr=False)

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(a.param for a in self.axes)

    @property
    def seeds(self) -> list[int]:
        return replication_seeds(self.root_seed, self.replications)

    @property
    def hash(self) -> str:
        """sha256 of the spec's content (not its file layout); a resumed sweep must have the same hash."""
        blob = json.dumps(self.raw, sort_keys=True, separators=(",", ":"), default=str).encode()
        return hashlib.sha256(blob).hexdigest()


@dataclass(frozen=True)
class Design:
    """The points of a sweep: ``points[i]`` holds one value per parameter, in ``params`` order.

    ``blocks`` labels each point for the sensitivity estimators (sobol: "A", "B", "AB<i>"; morris:
    trajectory number and step), ``rows`` the base-sample row or trajectory it belongs to.
    """

    params: tuple[str, ...]
    points: list[tuple]
    blocks: list[str]
    rows: list[int]

    def overrides(self, i: int) -> dict[str, Any]:
        return dict(zip(self.params, self.points[i], strict=True))


def _err(source: str, key: str, value: object, allowed: str) -> ScenarioError:
    return ScenarioError(source, key, value, allowed)


def _is_num(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _range_values(source: str, key: str, rng: Any, kind: str) -> tuple:
    keys = set(rng) if isinstance(rng, dict) else set()
    if not isinstance(rng, dict) or keys - {"start", "stop", "step", "num"} or not {"start", "stop"} <= keys:
        raise _err(source, key, rng, "must be a table {start, stop, step} or {start, stop, num}")
    if ("step" in rng) == ("num" in rng):
        raise _err(source, key, rng, "give exactly one of step or num")
    start, stop = rng["start"], rng["stop"]
    for k in ("start", "stop", "step"):
        if k in rng and not _is_num(rng[k]):
            raise _err(source, f"{key}.{k}", rng[k], "must be a number")
    if "num" in rng:
        num = rng["num"]
        if not isinstance(num, int) or isinstance(num, bool) or num < 1:
            raise _err(source, f"{key}.num", num, "must be an integer >= 1 (an empty range runs nothing)")
        vals = np.linspace(start, stop, num)
    else:
        step = rng["step"]
        span = (stop - start) / step if step else -1.0
        if step == 0 or span < -1e-9:
            raise _err(source, key, rng, "is empty: step must be non-zero and lead from start to stop")
        vals = start + step * np.arange(math.floor(span + 1e-9) + 1)
    if kind == "int":
        if not all(float(v).is_integer() for v in vals):
            raise _err(source, key, rng, "gives non-integer values for an integer parameter")
        return tuple(round(float(v)) for v in vals)
    return tuple(float(round(v, 12)) for v in vals)


def _parse_axis(source: str, i: int, raw: Any, base: Scenario, design: str) -> Axis:
    key = f"axis[{i}]"
    if not isinstance(raw, dict):
        raise _err(source, key, raw, "each [[axis]] must be a table with param and values/range/low+high")
    if unknown := set(raw) - AXIS_KEYS:
        raise _err(source, f"{key}.{sorted(unknown)[0]}", raw[sorted(unknown)[0]],
                   f"unknown key; allowed: {', '.join(sorted(AXIS_KEYS))}")
    param = raw.get("param")
    if not isinstance(param, str) or "." not in param:
        raise _err(source, f"{key}.param", param, "must be a dotted scenario key like 'model.threshold'")
    try:
        current = base.get(param)
    except (KeyError, TypeError):
        # let apply_overrides word the error (it lists the allowed keys of the section)
        apply_overrides(base, {param: raw.get("values", [raw.get("low")])}, source=f"{source} {key}")
        raise _err(source, f"{key}.param", param, "unknown parameter") from None
    if isinstance(current, tuple | list | dict):
        raise _err(source, f"{key}.param", param, "only scalar parameters can be swept")
    kind = {bool: "bool", int: "int", float: "float", str: "str"}[type(current)]
    given = [k for k in ("values", "range") if k in raw]
    given += ["low/high"] if {"low", "high"} & set(raw) else []
    if design in SAMPLED:
        if given != ["low/high"] or not {"low", "high"} <= set(raw):
            raise _err(source, key, param,
                       f"design {design!r} samples axes: give low and high, not values/range")
        low, high = raw["low"], raw["high"]
        if kind not in ("int", "float"):
            raise _err(source, f"{key}.param", param, f"is {kind}; only numeric parameters can be sampled")
        for k, v in (("low", low), ("high", high)):
            if not _is_num(v) or (kind == "int" and not isinstance(v, int)):
                raise _err(source, f"{key}.{k}", v, f"must be {'an integer' if kind == 'int' else 'a number'}"
                           f" ({param} is {kind})")
        if not low < high:
            raise _err(source, key, f"low={low}, high={high}", "empty range: low must be < high")
        return Axis(param, kind, (), float(low), float(high))
    if len(given) != 1 or given == ["low/high"]:
        raise _err(source, key, param, f"design {design!r} needs exactly one of values or range")
    if "values" in raw:
        vals = raw["values"]
        if not isinstance(vals, list) or not vals:
            raise _err(source, f"{key}.values", vals, "must be a non-empty list")
        values = tuple(float(v) if kind == "float" and _is_num(v) and isinstance(v, int) else v for v in vals)
    else:
        if kind not in ("int", "float"):
            raise _err(source, f"{key}.range", raw["range"], f"{param} is {kind}; a range needs a number")
        values = _range_values(source, f"{key}.range", raw["range"], kind)
    if len(set(map(repr, values))) != len(values):
        raise _err(source, f"{key}.values", list(values), "values must be distinct")
    return Axis(param, kind, values)


def parse_spec(path: str | Path) -> tuple[SweepSpec, Scenario]:
    """Read and validate a sweep spec and its base scenario; raises ScenarioError on the first problem.

    Every axis value (or both bounds) is applied to the base scenario, so an unknown parameter, a wrong
    type or an out-of-range value is reported here and nothing runs.
    """
    path = Path(path)
    source = str(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise _err(source, "<file>", source, "sweep spec not found") from None
    except tomllib.TOMLDecodeError as err:
        raise _err(source, "<toml>", str(err), "must be valid TOML") from None
    if unknown := set(raw) - {"sweep", "axis"}:
        first = sorted(unknown)[0]
        raise _err(source, first, raw[first], "unknown section; allowed: sweep, axis")
    sw = raw.get("sweep")
    if not isinstance(sw, dict):
        raise _err(source, "sweep", sw, "a [sweep] table is required")
    if unknown := set(sw) - SWEEP_KEYS:
        raise _err(source, f"sweep.{sorted(unknown)[0]}", sw[sorted(unknown)[0]],
                   f"unknown key; allowed: {', '.join(sorted(SWEEP_KEYS))}")

    def get(key: str, kind: type, default: Any, check: Any = None, allowed: str = "") -> Any:
        v = sw.get(key, default)
        bad_type = v is None or not isinstance(v, kind) or isinstance(v, bool) != (kind is bool)
        if bad_type or (check and not check(v)):
            shown = "<missing>" if v is None else v
            raise _err(source, f"sweep.{key}", shown, allowed or f"must be a {kind.__name__}")
        return v

    name = get("name", str, None, lambda s: s and all(c.isalnum() or c in "-_." for c in s),
               "is required: a short name of letters, digits, -, _ or . (results go to results/<name>/)")
    base_rel = get("base", str, None, None, "is required: path of the base scenario, relative to the spec")
    design = get("design", str, "grid", lambda d: d in DESIGNS, f"must be one of {', '.join(DESIGNS)}")
    root_seed = get("root_seed", int, None, lambda s: 0 <= s < 2**63, "is required: an integer >= 0")
    reps = get("replications", int, 1, lambda n: 1 <= n <= 100_000, "must be an integer in 1..100000")
    samples = get("samples", int, 0, lambda n: n >= 0, "must be an integer >= 1")
    levels = get("levels", int, 4, lambda n: n >= 2 and n % 2 == 0, "must be an even integer >= 2")
    kpis = get("kpis", list, [], lambda ks: all(isinstance(k, str) for k in ks),
               "must be a list of KPI names")
    fixed = get("fixed", dict, {}, None, "must be a table of 'section.key' = value")
    description = get("description", str, "")
    if design in SAMPLED and samples < 1:
        raise _err(source, "sweep.samples", samples, f"design {design!r} needs samples >= 1")
    if design == "sobol" and samples & (samples - 1):
        raise _err(source, "sweep.samples", samples, "sobol needs a power of 2 (e.g. 64, 128, 256)")
    base = load_scenario((path.parent / base_rel).resolve())
    if fixed:
        base = apply_overrides(base, fixed, source=f"{source} [sweep.fixed]")
    axes_raw = raw.get("axis", [])
    if not isinstance(axes_raw, list) or not axes_raw:
        raise _err(source, "axis", axes_raw, "at least one [[axis]] table is required")
    axes = tuple(_parse_axis(source, i, a, base, design) for i, a in enumerate(axes_raw))
    if len({a.param for a in axes}) != len(axes):
        raise _err(source, "axis", [a.param for a in axes], "each parameter may appear on one axis only")
    if set(fixed) & {a.param for a in axes}:
        raise _err(source, "sweep.fixed", sorted(set(fixed) & {a.param for a in axes}),
                   "must not repeat an axis")
    if design == "zip" and len({len(a.values) for a in axes}) > 1:
        raise _err(source, "axis", [len(a.values) for a in axes], "design 'zip' needs axes of equal length")
    for i, a in enumerate(axes):  # every distinct value (or both bounds) must give a valid scenario
        for v in a.values or (_cast(a, a.low), _cast(a, a.high)):
            apply_overrides(base, {a.param: v}, source=f"{source} axis[{i}]")
    resolved = {**sw, "base_scenario_hash": base.hash, "axis": axes_raw}
    spec = SweepSpec(source, name, (path.parent / base_rel).resolve(), description, root_seed, reps, design,
                     samples, levels, tuple(kpis), dict(fixed), axes, resolved)
    n_runs = n_points(spec) * reps
    if n_runs > MAX_RUNS:
        raise _err(source, "sweep", f"{n_runs} runs", f"at most {MAX_RUNS} runs per sweep")
    return spec, base


def _cast(axis: Axis, v: float) -> Any:
    return round(v) if axis.kind == "int" else float(v)


def n_points(spec: SweepSpec) -> int:
    """Number of design points (runs = points x replications)."""
    k, n = len(spec.axes), spec.samples
    return {"grid": math.prod(len(a.values) for a in spec.axes), "zip": len(spec.axes[0].values),
            "lhs": n, "sobol": n * (k + 2), "morris": n * (k + 1)}[spec.design]


def _scale(axes: tuple[Axis, ...], u: np.ndarray) -> list[tuple]:
    """Map unit-cube samples to parameter values (integers: equal-width bins over low..high inclusive)."""
    cols = []
    for j, a in enumerate(axes):
        if a.kind == "int":
            lo, hi = int(a.low), int(a.high)
            cols.append([int(v) for v in np.minimum(lo + np.floor(u[:, j] * (hi - lo + 1)), hi)])
        else:
            cols.append([float(round(v, 12)) for v in a.low + u[:, j] * (a.high - a.low)])
    return list(zip(*cols, strict=True))


def _engine(cls: Any, gen: np.random.Generator, **kw: Any) -> Any:
    """A scipy.stats.qmc engine driven by ``gen`` (``rng=`` since SciPy 1.15, ``seed=`` before)."""
    try:
        return cls(rng=gen, **kw)
    except TypeError:
        return cls(seed=gen, **kw)


def build_design(spec: SweepSpec) -> Design:
    """The design's points, deterministic for a given spec (samplers seeded from ``root_seed``)."""
    axes, k, n = spec.axes, len(spec.axes), spec.samples
    params = spec.params
    if spec.design == "grid":
        pts = list(itertools.product(*(a.values for a in axes)))
        return Design(params, pts, ["grid"] * len(pts), list(range(len(pts))))
    if spec.design == "zip":
        pts = list(zip(*(a.values for a in axes), strict=True))
        return Design(params, pts, ["zip"] * len(pts), list(range(len(pts))))
    from scipy.stats import qmc  # noqa: PLC0415 - scipy only for sampled designs

    gen = Streams(spec.root_seed).generator(f"sweep.design.{spec.design}")
    if spec.design == "lhs":
        u = _engine(qmc.LatinHypercube, gen, d=k).random(n)
        return Design(params, _scale(axes, u), ["lhs"] * n, list(range(n)))
    if spec.design == "sobol":
        # Saltelli (2010) layout: blocks A, B and AB_i (A with column i from B), N rows each
        ab = _engine(qmc.Sobol, gen, d=2 * k, scramble=True).random_base2(int(math.log2(n)))
        a_mat, b_mat = ab[:, :k], ab[:, k:]
        mats, blocks = [a_mat, b_mat], ["A", "B"]
        for i in range(k):
            m = a_mat.copy()
            m[:, i] = b_mat[:, i]
            mats.append(m)
            blocks.append(f"AB{i}")
        pts = [p for m in mats for p in _scale(axes, m)]
        labels = [b for b in blocks for _ in range(n)]
        return Design(params, pts, labels, [r for _ in blocks for r in range(n)])
    return _morris(spec, gen)


def _morris(spec: SweepSpec, gen: np.random.Generator) -> Design:
    """Morris (1991) one-at-a-time trajectories on a ``levels``-level grid, step delta = p / (2 (p - 1))."""
    k, p = len(spec.axes), spec.levels
    delta = p / (2 * (p - 1))
    start_levels = np.arange(p // 2) / (p - 1)  # starting points in the lower half so x + delta <= 1
    pts, blocks, rows = [], [], []
    for t in range(spec.samples):
        x = gen.choice(start_levels, size=k)
        order = gen.permutation(k)
        traj = [x.copy()]
        for i in order:
            x = x.copy()
            x[i] += delta
            traj.append(x)
        u = np.vstack(traj)  # grid levels map onto the bounds exactly: 0 -> low, 1 -> high
        cols = [[round(a.low + v * (a.high - a.low)) if a.kind == "int"
                 else float(round(a.low + v * (a.high - a.low), 12)) for v in u[:, j]]
                for j, a in enumerate(spec.axes)]
        vals = list(zip(*cols, strict=True))
        pts += vals
        blocks += ["start"] + [f"step{int(i)}" for i in order]
        rows += [t] * (k + 1)
    return Design(spec.params, pts, blocks, rows)
