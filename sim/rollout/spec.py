"""The ``[rollout]`` section as data: strategy, waves and their order, gates, pauses, rollback.

Every new option defaults to the behaviour the engine had before it existed, so existing scenario files keep
their results. Errors name the key, the bad value and what is allowed (one line, exit 2).
"""

from __future__ import annotations

import math

from sim.errors import ScenarioError
from sim.schema import Rule

GATE_SCHEMA = {
    "metric": Rule("str", doc="'kpi_a/kpi_b' (ratio of sums) or 'kpi' (mean per site-day)"),
    "min": Rule("float", -math.inf, allow_inf=True, doc="pass only if metric >= min (msprt: the reference)"),
    "max": Rule("float", math.inf, allow_inf=True, doc="pass only if metric <= max"),
    "fail_min": Rule(
        "float", -math.inf, allow_inf=True,
        doc="fail outright below this; between fail_min and min the gate is inconclusive",
    ),
    "fail_max": Rule(
        "float", math.inf, allow_inf=True,
        doc="fail outright above this; between max and fail_max the gate is inconclusive",
    ),
    "test": Rule(
        "str", "threshold", choices=("threshold", "msprt"),
        doc="threshold on the window, or an always-valid mSPRT on everything since the wave went live",
    ),
    "alpha": Rule("float", 0.05, min=1e-6, max=0.5, doc="msprt: error rate over any number of looks"),
    "tau": Rule("float", 0.05, min=1e-9, doc="msprt: spread of the mixture over effects (metric units)"),
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
        "int", 0, min=0, doc="consecutive failures before the failure action (0: never)"
    ),
    "on_failure_limit": Rule(
        "str", "stall", choices=("stall", "rollback"),
        doc="at max_gate_failures: stop where it is, or take the wave under the gate offline and stop",
    ),
    "on_inconclusive": Rule(
        "str", "fail", choices=("fail", "pause"),
        doc="an inconclusive gate counts as failed, or pauses the rollout for a human review",
    ),
    "review_delay_days": Rule(
        "int", 7, min=1, doc="days a human review of an inconclusive gate takes; checks resume after it"
    ),
    "rollback": Rule("tables", [], item_schema=GATE_SCHEMA, doc="a live wave failing these is taken offline"),
    "rollback_min_live_days": Rule("int", 60, min=1, doc="days live before a wave can be rolled back"),
    "source": Rule("str", "", doc="citation for the rollout plan"),
}


def check(source: str, section: dict, n_sites: int, kpis: dict[str, str]) -> None:
    """Cross-field rules: waves add up to the site count; gate metrics name known KPIs; bounds are ordered;
    an msprt gate tests a ratio against a reference ``min`` strictly between 0 and 1."""
    if sum(section["waves"]) != n_sites:
        raise ScenarioError(
            source,
            "rollout.waves",
            section["waves"],
            f"must add up to the number of sites ({n_sites}), not {sum(section['waves'])}",
        )
    for key in ("gates", "rollback"):
        for i, gate in enumerate(section[key]):
            where = f"rollout.{key}[{i}]"
            for name in gate["metric"].split("/"):
                if name not in kpis:
                    raise ScenarioError(
                        source,
                        f"{where}.metric",
                        gate["metric"],
                        f"unknown KPI {name!r}; allowed: {', '.join(sorted(kpis))}",
                    )
            _check_bounds(source, where, gate, key)


def _check_bounds(source: str, where: str, gate: dict, key: str) -> None:
    if gate["min"] > gate["max"]:
        raise ScenarioError(source, f"{where}.min", gate["min"], f"must be <= max ({gate['max']:g})")
    if gate["fail_min"] > gate["min"]:
        raise ScenarioError(source, f"{where}.fail_min", gate["fail_min"],
                            f"must be <= min ({gate['min']:g})")
    if gate["fail_max"] < gate["max"]:
        raise ScenarioError(source, f"{where}.fail_max", gate["fail_max"],
                            f"must be >= max ({gate['max']:g})")
    if gate["test"] != "msprt":
        return
    if key == "rollback":
        raise ScenarioError(source, f"{where}.test", "msprt", "rollback criteria must use 'threshold'")
    if "/" not in gate["metric"]:
        raise ScenarioError(source, f"{where}.metric", gate["metric"],
                            "an msprt gate needs a proportion 'kpi_a/kpi_b'")
    if not 0.0 < gate["min"] < 1.0:
        raise ScenarioError(source, f"{where}.min", gate["min"],
                            "an msprt gate needs the reference proportion in min, strictly between 0 and 1")
