"""Phased rollout: waves of sites, go/no-go gates on KPIs, minimum dwell, rollback; or a big bang.

The controller is one SimPy process. Gate metrics are read from the KPI recorder: ``"a/b"`` is the ratio of
the sums of KPIs ``a`` and ``b`` over the gate window and the scoped sites; ``"a"`` alone is the mean of ``a``
per site-day. No data (a zero denominator) fails the gate.
"""

from __future__ import annotations

import math
from collections.abc import Generator

import numpy as np

from sim.errors import ScenarioError
from sim.schema import Rule

GATE_SCHEMA = {
    "metric": Rule("str", doc="'kpi_a/kpi_b' (ratio of sums) or 'kpi' (mean per site-day)"),
    "min": Rule("float", -math.inf, allow_inf=True, doc="pass only if metric >= min"),
    "max": Rule("float", math.inf, allow_inf=True, doc="pass only if metric <= max"),
    "source": Rule("str", "", doc="citation or rationale for the threshold"),
}

SCHEMA: dict[str, Rule] = {
    "strategy": Rule("str", "phased", choices=("phased", "big_bang"), doc="waves with gates, or all at once"),
    "waves": Rule(
        "list[int]", min=1, min_len=1, doc="sites per wave, pilot first; must add up to the site count"
    ),
    "wave_order": Rule(
        "str",
        "random",
        choices=("random", "largest_first", "smallest_first", "as_listed"),
        doc="how sites are assigned to waves",
    ),
    "first_go_live_day": Rule("int", 0, min=0, doc="day the pilot wave goes live"),
    "min_dwell_days": Rule(
        "int", 60, min=1, doc="days a wave runs before the gate to the next wave is checked"
    ),
    "gate_check_every_days": Rule(
        "int", 14, min=1, doc="after a failed gate, days until it is checked again"
    ),
    "gate_window_days": Rule("int", 30, min=1, doc="days of KPIs a gate looks at"),
    "gate_scope": Rule("str", "last_wave", choices=("last_wave", "all_live"), doc="sites a gate looks at"),
    "gates": Rule("tables", [], item_schema=GATE_SCHEMA, doc="go/no-go criteria, all must pass"),
    "hold_on_monitor_alarm": Rule("bool", True, doc="an open monitor alarm at a live site blocks the gate"),
    "max_gate_failures": Rule(
        "int", 0, min=0, doc="consecutive failures before the rollout stalls (0: never)"
    ),
    "rollback": Rule("tables", [], item_schema=GATE_SCHEMA, doc="a live wave failing these is taken offline"),
    "rollback_min_live_days": Rule("int", 60, min=1, doc="days live before a wave can be rolled back"),
    "source": Rule("str", "", doc="citation for the rollout plan"),
}


def check(source: str, section: dict, n_sites: int, kpis: dict[str, str]) -> None:
    """Cross-field rules: waves add up to the site count; gate metrics name known KPIs."""
    if sum(section["waves"]) != n_sites:
        raise ScenarioError(
            source,
            "rollout.waves",
            section["waves"],
            f"must add up to the number of sites ({n_sites}), not {sum(section['waves'])}",
        )
    for key in ("gates", "rollback"):
        for i, gate in enumerate(section[key]):
            for name in gate["metric"].split("/"):
                if name not in kpis:
                    raise ScenarioError(
                        source,
                        f"rollout.{key}[{i}].metric",
                        gate["metric"],
                        f"unknown KPI {name!r}; allowed: {', '.join(sorted(kpis))}",
                    )


def assign_waves(section: dict, sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Wave index per site, following ``wave_order``."""
    n = len(sizes)
    order = {
        "random": rng.permutation(n),
        "largest_first": np.argsort(-sizes, kind="stable"),
        "smallest_first": np.argsort(sizes, kind="stable"),
        "as_listed": np.arange(n),
    }[section["wave_order"]]
    wave = np.empty(n, dtype=np.int64)
    bounds = np.cumsum([0, *section["waves"]])
    for w in range(len(section["waves"])):
        wave[order[bounds[w] : bounds[w + 1]]] = w
    return wave


def metric_value(kpi, expr: str, sites: np.ndarray, day_from: int, day_to: int) -> float:
    """Evaluate a gate metric over ``sites`` and days ``[day_from, day_to)``; NaN if there is no data."""
    if len(sites) == 0 or day_to <= day_from:
        return math.nan
    if "/" in expr:
        num, den = expr.split("/")
        d = kpi.window(den, sites, day_from, day_to)
        return kpi.window(num, sites, day_from, day_to) / d if d > 0 else math.nan
    return kpi.window(expr, sites, day_from, day_to) / (len(sites) * (day_to - day_from))


def _evaluate(ctx, gates: list[dict], sites: np.ndarray, day: int, window: int) -> tuple[bool, str]:
    parts, ok = [], True
    for g in gates:
        v = metric_value(ctx.kpi, g["metric"], sites, day - window, day)
        passed = not math.isnan(v) and g["min"] <= v <= g["max"]
        ok &= passed
        parts.append(f"{g['metric']}={v:.3g}{'' if passed else ' FAIL'}")
    return ok, "; ".join(parts)


def _go_live(ctx, wave: int) -> None:
    sites = np.flatnonzero(ctx.wave == wave)
    ctx.live[sites] = True
    ctx.live_since[sites] = ctx.env.now
    ctx.silent[sites] = False
    ctx.watched_since[sites] = np.minimum(ctx.watched_since[sites], ctx.env.now)
    ctx.current_wave = wave
    ctx.events.log(ctx.env.now, "wave_live", detail=f"wave {wave}: {len(sites)} sites", value=wave)
    for s in sites:
        ctx.events.log(ctx.env.now, "site_live", site=ctx.site_names[s], value=wave)
    nxt = np.flatnonzero((ctx.wave == wave + 1) & ~ctx.live)
    phased = ctx.scenario.get("rollout.strategy") == "phased"  # a big bang has no "next wave" to wait
    if phased and ctx.monitor is not None and ctx.monitor.cfg["silent_next_wave"] and len(nxt):
        ctx.silent[nxt] = True
        ctx.watched_since[nxt] = np.minimum(ctx.watched_since[nxt], ctx.env.now)
        detail = f"wave {wave + 1}: {len(nxt)} sites scored silently"
        ctx.events.log(ctx.env.now, "wave_silent", detail=detail, value=wave + 1)
        for s in nxt:
            ctx.events.log(ctx.env.now, "site_silent", site=ctx.site_names[s], value=wave + 1)


def controller(ctx) -> Generator:
    """SimPy process driving go-lives, gates and rollbacks (hours are the time unit)."""
    cfg = ctx.scenario.section("rollout")
    day_h = 24.0
    yield ctx.env.timeout(cfg["first_go_live_day"] * day_h)
    n_waves = len(cfg["waves"])
    if cfg["strategy"] == "big_bang":
        for w in range(n_waves):
            _go_live(ctx, w)
        return
    _go_live(ctx, 0)
    wave_live_day = {0: cfg["first_go_live_day"]}
    failures = 0
    next_gate = cfg["first_go_live_day"] + cfg["min_dwell_days"]
    while True:
        yield ctx.env.timeout(cfg["gate_check_every_days"] * day_h)
        day = int(ctx.env.now // day_h)
        _check_rollback(ctx, cfg, wave_live_day, day)
        if ctx.current_wave + 1 >= n_waves or day < next_gate or ctx.stalled:
            continue
        scope = ctx.wave == ctx.current_wave if cfg["gate_scope"] == "last_wave" else ctx.live
        sites = np.flatnonzero(scope & ctx.live)
        ok, detail = _evaluate(ctx, cfg["gates"], sites, day, cfg["gate_window_days"])
        if cfg["hold_on_monitor_alarm"] and ctx.monitor is not None:
            open_alarms = int(np.sum(ctx.monitor.alarm_open & ctx.live))
            if open_alarms:
                ok = False
                detail += f"; open monitor alarms={open_alarms} FAIL"
        gate = ctx.current_wave + 1
        if ok:
            ctx.events.log(ctx.env.now, "gate_passed", detail=f"gate {gate}: {detail}", value=gate)
            _go_live(ctx, gate)
            wave_live_day[gate] = day
            failures = 0
            next_gate = day + cfg["min_dwell_days"]
        else:
            failures += 1
            ctx.events.log(ctx.env.now, "gate_failed", detail=f"gate {gate}: {detail}", value=gate)
            if cfg["max_gate_failures"] and failures >= cfg["max_gate_failures"]:
                ctx.stalled = True
                ctx.events.log(
                    ctx.env.now,
                    "rollout_stalled",
                    detail=f"gate {gate} failed {failures} times in a row",
                    value=gate,
                )


def _check_rollback(ctx, cfg: dict, wave_live_day: dict[int, int], day: int) -> None:
    if not cfg["rollback"]:
        return
    for w, since in list(wave_live_day.items()):
        sites = np.flatnonzero((ctx.wave == w) & ctx.live)
        if len(sites) == 0 or day - since < cfg["rollback_min_live_days"]:
            continue
        ok, detail = _evaluate(ctx, cfg["rollback"], sites, day, cfg["gate_window_days"])
        if not ok:
            ctx.live[sites] = False
            del wave_live_day[w]
            ctx.events.log(ctx.env.now, "rollback", detail=f"wave {w}: {detail}", value=w)
