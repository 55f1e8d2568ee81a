"""The domain-agnostic engine: one SimPy Environment per run, sites, rollout, drift, monitor, adoption, KPIs.

``run(scenario, seed)`` builds a fresh :class:`RunContext`, lets the scenario's domain add its sites, model
and processes, runs the Environment to the horizon (hours), and returns a :class:`RunResult` with a tidy KPI
frame, the event log, the headline KPIs and self-describing metadata. Nothing is kept between runs, so runs
parallelise across processes and machines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import simpy

from sim import drift, monitor, rollout
from sim.adoption import Adoption
from sim.domains import load_domain
from sim.events import EventLog
from sim.kpi import ENGINE_KPIS, KPIRecorder
from sim.provenance import git_commit, package_version
from sim.rng import Streams
from sim.scenario import Scenario

SCHEMA_VERSION = 1


@dataclass
class RunContext:
    """Everything one run shares between its processes. Created fresh for every run."""

    env: simpy.Environment
    scenario: Scenario
    seed: int
    streams: Streams
    horizon_days: int
    site_names: list[str] = field(default_factory=list)
    wave: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    live: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))
    live_since: np.ndarray = field(default_factory=lambda: np.empty(0))
    #: sites the model scores without alerting ahead of their go-live (``monitor.silent_next_wave``)
    silent: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))
    #: when each site was first scored, silently or live (the monitor's windows count from here)
    watched_since: np.ndarray = field(default_factory=lambda: np.empty(0))
    current_wave: int = -1
    stalled: bool = False
    kpi: KPIRecorder | None = None
    events: EventLog = field(default_factory=EventLog)
    adoption: Adoption | None = None
    drift: drift.DriftSchedule | None = None
    monitor: monitor.Monitor | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_sites(self) -> int:
        return len(self.site_names)

    def setup_sites(self, names: list[str], sizes: np.ndarray, kpis: dict[str, str]) -> None:
        """Register the domain's sites: assign waves, create adoption, drift, monitor and the KPI recorder."""
        sc = self.scenario
        self.site_names = list(names)
        n = len(names)
        self.wave = rollout.assign_waves(
            sc.section("rollout"), np.asarray(sizes, dtype=float), self.streams.generator("rollout.waves")
        )
        self.live = np.zeros(n, dtype=bool)
        self.live_since = np.full(n, np.inf)
        self.silent = np.zeros(n, dtype=bool)
        self.watched_since = np.full(n, np.inf)
        self.kpi = KPIRecorder({**ENGINE_KPIS, **kpis}, n, self.horizon_days)
        self.adoption = Adoption(sc.section("adoption"), self.wave)
        self.drift = drift.DriftSchedule(
            list(sc.section("drift")), self.wave, self.streams.generator("drift")
        )
        mcfg = sc.section("monitor")
        self.monitor = monitor.Monitor(mcfg, n) if mcfg["enabled"] else None


@dataclass
class RunResult:
    kpis: pd.DataFrame
    events: pd.DataFrame
    headline: dict[str, float]
    meta: dict[str, Any]
    #: in-memory details for tests and analysis (the domain's state); never written to disk
    details: dict[str, Any] = field(default_factory=dict, repr=False)


def metadata(scenario: Scenario) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "package_version": package_version(),
        "git_commit": git_commit(),
        "scenario": scenario.name,
        "scenario_hash": scenario.hash,
        "domain": scenario.domain,
    }


def live_days_process(ctx: RunContext):
    """Record, per site and day, whether the site was live at midday (``live_days``).

    Midday keeps every day of the horizon inside the run (events at the horizon itself are not processed)
    and after any go-live or rollback decided at the day's start.
    """
    yield ctx.env.timeout(12.0)
    while True:
        ctx.kpi.add_site_vector("live_days", ctx.live.astype(float), int(ctx.env.now // 24))
        yield ctx.env.timeout(24.0)


def run(scenario: Scenario, seed: int, **options: Any) -> RunResult:
    """Run one replication of ``scenario`` with integer ``seed``; deterministic for a given pair.

    ``options`` are passed to the domain's ``build`` (e.g. ``registry=`` for the model registry).
    """
    domain = load_domain(scenario.domain)
    env = simpy.Environment()
    horizon_days = scenario.get("scenario.horizon_days")
    ctx = RunContext(env, scenario, int(seed), Streams(seed), horizon_days)
    domain.build(ctx, **options)  # calls ctx.setup_sites and registers the domain's processes
    env.process(rollout.controller(ctx))
    env.process(ctx.drift.logger(ctx))
    env.process(live_days_process(ctx))
    if ctx.monitor is not None:
        env.process(monitor.process(ctx, ctx.extra.get("recalibrate"), ctx.extra.get("drift_alarm")))
    env.run(until=horizon_days * 24.0)
    run_id = f"{scenario.name}-{seed}"
    headline = domain.headline(ctx)
    headline["furthest_rollout_wave"] = float(ctx.current_wave)
    headline["sites_live_at_end"] = float(ctx.live.sum())
    headline["monitor_alarms"] = float(ctx.monitor.alarms if ctx.monitor else 0)
    headline.update(monitor.drift_headline(ctx))  # drift_alarms, detection_delay, retrains
    period = scenario.get("scenario.report_period_days")
    kpis = ctx.kpi.to_frame(run_id, seed, period, ctx.site_names)
    wave_of = dict(zip(ctx.site_names, ctx.wave.tolist(), strict=True))
    kpis.insert(3, "wave", kpis["site"].map(wave_of).astype("int32"))
    meta = metadata(scenario) | {"seed": int(seed), "run_id": run_id}
    return RunResult(kpis, ctx.events.to_frame(run_id, seed), headline, meta, ctx.extra)
