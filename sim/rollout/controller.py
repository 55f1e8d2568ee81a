"""The rollout controller: one SimPy process driving go-lives, gates, pauses and rollbacks (hours).

Phased: the pilot wave goes live on ``first_go_live_day``; after ``min_dwell_days`` the gate to the next wave
is checked every ``gate_check_every_days``. Each check logs its decision with every value it saw:
``gate_passed`` (the next wave goes live), ``gate_failed`` (hold; after ``max_gate_failures`` in a row the
rollout stalls, or with ``on_failure_limit = "rollback"`` the wave under the gate is taken offline and the
rollout stops), ``gate_waiting`` (a sequential gate has not decided yet), or ``gate_inconclusive`` followed
by ``gate_paused`` when ``on_inconclusive = "pause"``: a human reviews for ``review_delay_days`` (nothing is
decided meanwhile, rollback checks included), logs ``gate_resumed`` and checks resume one interval later. The
simulated human adds time, not information. Big bang: every wave goes live on ``first_go_live_day``.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np

from sim.rollout.gates import evaluate

DAY_H = 24.0


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
    """SimPy process driving go-lives, gates, pauses and rollbacks (hours are the time unit)."""
    cfg = ctx.scenario.section("rollout")
    yield ctx.env.timeout(cfg["first_go_live_day"] * DAY_H)
    n_waves = len(cfg["waves"])
    if cfg["strategy"] == "big_bang":
        for w in range(n_waves):
            _go_live(ctx, w)
        return
    _go_live(ctx, 0)
    wave_live_day = {0: cfg["first_go_live_day"]}
    failures = 0
    next_gate = cfg["first_go_live_day"] + cfg["min_dwell_days"]
    pause = cfg["on_inconclusive"] == "pause"
    while True:
        yield ctx.env.timeout(cfg["gate_check_every_days"] * DAY_H)
        day = int(ctx.env.now // DAY_H)
        _check_rollback(ctx, cfg, wave_live_day, day)
        if ctx.current_wave + 1 >= n_waves or day < next_gate or ctx.stalled:
            continue
        scope = ctx.wave == ctx.current_wave if cfg["gate_scope"] == "last_wave" else ctx.live
        sites = np.flatnonzero(scope & ctx.live)
        since = wave_live_day.get(ctx.current_wave, cfg["first_go_live_day"])
        outcome, detail = evaluate(ctx, cfg["gates"], sites, day, cfg["gate_window_days"], since=since,
                                   pause=pause)
        if cfg["hold_on_monitor_alarm"] and ctx.monitor is not None:
            open_alarms = int(np.sum(ctx.monitor.alarm_open & ctx.live))
            if open_alarms:
                outcome = "fail"
                detail += f"; open monitor alarms={open_alarms} FAIL"
        gate = ctx.current_wave + 1
        if outcome == "pass":
            ctx.events.log(ctx.env.now, "gate_passed", detail=f"gate {gate}: {detail}", value=gate)
            _go_live(ctx, gate)
            wave_live_day[gate] = day
            failures = 0
            next_gate = day + cfg["min_dwell_days"]
        elif outcome == "wait":
            ctx.events.log(ctx.env.now, "gate_waiting", detail=f"gate {gate}: {detail}", value=gate)
        elif outcome == "inconclusive":
            ctx.events.log(ctx.env.now, "gate_inconclusive", detail=f"gate {gate}: {detail}", value=gate)
            review = cfg["review_delay_days"]
            ctx.events.log(ctx.env.now, "gate_paused", detail=f"gate {gate}: human review for {review} days",
                           value=gate)
            yield ctx.env.timeout(review * DAY_H)
            ctx.events.log(ctx.env.now, "gate_resumed", detail=f"gate {gate}: review done, checks resume",
                           value=gate)
        else:
            failures += 1
            ctx.events.log(ctx.env.now, "gate_failed", detail=f"gate {gate}: {detail}", value=gate)
            if cfg["max_gate_failures"] and failures >= cfg["max_gate_failures"]:
                _failure_limit(ctx, cfg, gate, failures, wave_live_day)


def _failure_limit(ctx, cfg: dict, gate: int, failures: int, wave_live_day: dict[int, int]) -> None:
    ctx.stalled = True
    ctx.events.log(ctx.env.now, "rollout_stalled", detail=f"gate {gate} failed {failures} times in a row",
                   value=gate)
    if cfg["on_failure_limit"] == "rollback":  # like an aborted canary: the wave under the gate goes offline
        w = gate - 1
        sites = np.flatnonzero((ctx.wave == w) & ctx.live)
        ctx.live[sites] = False
        wave_live_day.pop(w, None)
        ctx.events.log(ctx.env.now, "rollback", detail=f"wave {w}: gate {gate} failed {failures} times",
                       value=w)


def _check_rollback(ctx, cfg: dict, wave_live_day: dict[int, int], day: int) -> None:
    if not cfg["rollback"]:
        return
    for w, since in list(wave_live_day.items()):
        sites = np.flatnonzero((ctx.wave == w) & ctx.live)
        if len(sites) == 0 or day - since < cfg["rollback_min_live_days"]:
            continue
        outcome, detail = evaluate(ctx, cfg["rollback"], sites, day, cfg["gate_window_days"], since=since,
                                   pause=False)
        if outcome != "pass":
            ctx.live[sites] = False
            del wave_live_day[w]
            ctx.events.log(ctx.env.now, "rollback", detail=f"wave {w}: {detail}", value=w)
