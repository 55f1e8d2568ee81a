"""The daily maintenance process shared by the fleet and plant domains, with a built-in counterfactual.

Two arms run side by side on common random numbers: arm 0 has the alert path (sensors -> model -> alert ->
routing -> people act -> planned visit), arm 1 is the same units without it. Both arms share every life's
parameters (initial wear, mode, length: ``Lives``), the sudden-failure draws and the site liveness; each arm
has its own workshops and its own stream for job durations, so arm 1 is identical across scenario variants
that differ only in the model, integration or adoption.

Per day (one SimPy process, numpy over all units): failures in both arms start breakdown jobs; arm 0's
sensors move on; units at scored sites are scored in one onnxruntime call per model; alerts at sites whose
alerts are routed to people go through the domain's ``route`` (integration) and are acted on with the
site's probability; an acted alert books a planned visit that replaces the part if its true RUL is within
``inspect_window_days`` (a failure prevented) or finds nothing (no fault found). Breakdowns start a new life
when repaired; sudden failures do not.

Hooks a domain overrides: ``scored_sites()``, ``routed_sites()``, ``route(units, day)``, ``p_act(sites)``,
``end_of_day(day, true, false)``, and ``model_for_site`` / ``scorers`` (one scorer per model).

Why one module of ~450 lines: the day is one vectorised pass whose steps read and write the same per-unit
arrays of both arms (lives, sensor state, jobs, alerts); split into files, each step would take the whole
state as arguments. The pieces with their own concept already live apart (degradation, service, monitoring).
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np

from sim.domains.maintenance.degradation import (
    SENSOR_DRIFTABLE,
    Lives,
    SensorState,
    TypeParams,
    duty_profiles,
    feature_names,
)
from sim.domains.maintenance.metrics import alert_precision_recall, lead_time_summary
from sim.domains.maintenance.monitoring import MonitorFeed
from sim.domains.maintenance.service import SHAPE, Workshops, capacity_for

KPIS = {
    "unit_days": "sum",
    "live_unit_days": "sum",
    "failures": "sum",
    "failures_cf": "sum",
    "live_failures": "sum",
    "live_failures_cf": "sum",
    "unplanned_downtime_h": "sum",
    "unplanned_downtime_cf_h": "sum",
    "live_unplanned_downtime_h": "sum",
    "live_unplanned_downtime_cf_h": "sum",
    "live_unplanned_downtime_cf_deg_h": "sum",
    "planned_downtime_h": "sum",
    "live_planned_downtime_h": "sum",
    "planned_visits": "sum",
    "replacements": "sum",
    "no_fault_found": "sum",
    "too_late": "sum",
    "alerts": "sum",
    "alerts_true": "sum",
    "alerts_false": "sum",
    "alerts_delivered": "sum",
    "alerts_acted": "sum",
    "shadow_alerts": "sum",
    "live_deg_ends": "sum",
    "live_deg_predicted": "sum",
    "live_sudden_failures": "sum",
    "p_act": "max",
}


#: fate of a life's true alerts: none, scored where alerts are not routed, lost in integration, not acted
#: on, acted on (a visit was booked)
FATES = ("none", "not_routed", "lost", "not_acted", "acted")


class World:
    """State and daily step of one maintenance run (see the module docstring)."""

    def __init__(
        self,
        ctx,
        deg: dict,
        types: list[dict],
        unit_site: np.ndarray,
        unit_type: np.ndarray,
        *,
        model: dict,
        service: dict,
        scorers: list,
        model_for_site: np.ndarray,
        model_type: list[int],
        duty_concentration: float = 1.0,
        k_max: int = 24,
    ):
        self.ctx, self.deg, self.m, self.svc = ctx, deg, model, service
        self.n = n = len(unit_site)
        self.site, self.type = unit_site.astype(np.int64), unit_type.astype(np.int64)
        st = ctx.streams
        self.tp = TypeParams(deg, types)
        self.lives = Lives(deg, self.tp, self.type, k_max, st.generator("maint.lives"))
        self.sensors = SensorState(
            deg,
            self.tp,
            self.type,
            duty_profiles(n, deg["conditions"], duty_concentration, st.generator("maint.duty")),
            st.generator("maint.units"),
        )
        self.sensor_rng, self.sudden_rng = st.generator("maint.sensors"), st.generator("maint.sudden")
        self.act_rng, self.oracle_rng = st.generator("maint.act"), st.generator("maint.oracle")
        self.scorers, self.model_type = scorers, list(model_type)
        self.family = list(range(len(scorers)))  # scorer index -> the original model it stands for
        self.model_for_site = np.asarray(model_for_site, dtype=np.int64).copy()
        self._apply_model_types(np.arange(ctx.n_sites))
        units = np.arange(n)
        k0 = np.zeros(n, dtype=np.int64)
        d0, mode, length = self.lives.get(units, k0)
        start = -self.lives.first_used * length
        self.k = np.stack([k0, k0.copy()])
        self.d0, self.mode = np.stack([d0, d0.copy()]), np.stack([mode, mode.copy()])
        self.start, self.length = np.stack([start, start.copy()]), np.stack([length, length.copy()])
        self.down = np.zeros((2, n), dtype=bool)
        self.pending = np.zeros(n, dtype=bool)
        self.alert_last = np.full(n, -np.inf)
        self.first_true = np.full(n, np.inf)  # first true alert of arm 0's current life (day)
        # what became of the current life's true alerts (best so far): see FATES
        self.fate = np.zeros(n, dtype=np.int64)
        per_site = np.bincount(self.site, minlength=ctx.n_sites)
        self.shops = Workshops(
            ctx.env,
            capacity_for(per_site, service["capacity_per_100_units"]),
            service,
            st.generator("maint.service.planned"),
        )
        # breakdown durations per unit and failure count, shared by both arms (common random numbers: with
        # nobody acting on alerts the two arms are identical)
        self.bd_factor = st.generator("maint.service.breakdowns").gamma(SHAPE, 1.0 / SHAPE, (n, k_max, 2))
        self.n_fail = np.zeros((2, n), dtype=np.int64)
        self.p_sudden = 1.0 - np.exp(
            -deg["sudden_failures_per_year"] * self.tp.sudden_scale[self.type] / 365.0
        )
        self.day_true = np.zeros(ctx.n_sites)
        self.day_false = np.zeros(ctx.n_sites)
        self.leads: list[np.ndarray] = []  # warning days of predicted lives ending at routed sites
        self.records: dict[str, list] = {
            k: [] for k in ("site", "day", "kind", "predicted", "lead", "routed", "fate")
        }
        self.thr = np.full(ctx.n_sites, model["threshold"], dtype=np.float32)
        #: sensor / signature drifts this run's [[drift]] entries use (none: the undrifted code path)
        self.sensor_drifts = [p for p in SENSOR_DRIFTABLE if p in ctx.drift.params]
        self.mon_feed = (
            MonitorFeed(ctx, self, feature_names(deg["sensors"]) if self.m["kind"] == "onnx" else None)
            if ctx.monitor is not None else None
        )
        if self.mon_feed is not None:
            ctx.extra["recalibrate"] = self.mon_feed.recalibrate  # [monitor] on_alarm = "recalibrate"
        self.retrainer = None  # MaintenanceRetraining when [retrain] policy is not "never" (retraining.py)

    # --- hooks (domains override) ------------------------------------------------------------------------
    def scored_sites(self) -> np.ndarray:
        """Sites whose units are scored today (alerts there count as shadow alerts unless routed)."""
        return self.ctx.live

    def routed_sites(self) -> np.ndarray:
        """Sites whose alerts reach people (the deployed sites)."""
        return self.ctx.live

    def route(self, units: np.ndarray, day: int) -> tuple[np.ndarray, np.ndarray]:
        """(delivered mask, extra delay hours) of alerts on ``units``: the model-to-people integration."""
        return np.ones(len(units), dtype=bool), np.zeros(len(units))

    def p_act(self, sites: np.ndarray) -> np.ndarray:
        return self.ctx.adoption.p_act()[sites]

    def staff_shifts(self) -> np.ndarray:
        return np.ones(self.ctx.n_sites)

    def end_of_day(self, day: int) -> None:
        pass

    def monitored_sites(self) -> np.ndarray:
        """Sites whose scores feed the monitor (a site's first ``reference_days`` of them: its reference)."""
        return self.routed_sites()

    # --- helpers -----------------------------------------------------------------------------------------
    def sensor_drift(self, units: np.ndarray) -> dict[str, np.ndarray] | None:
        """Per-unit values of the drifted sensor parameters today (None without such drift entries)."""
        if not self.sensor_drifts:
            return None
        base = {"sensor_offset": 0.0, "sensor_gain": 1.0, "signature_scale": 1.0}
        t, n = self.ctx.env.now, self.ctx.n_sites
        return {
            p: self.ctx.drift.apply(p, np.full(n, base[p]), t)[self.site[units]] for p in self.sensor_drifts
        }

    def _apply_model_types(self, sites: np.ndarray) -> None:
        for s in sites:
            units = np.flatnonzero(self.site == s)
            self.sensors.set_reference_type(units, self.model_type[self.model_for_site[s]])

    def set_model(self, site: int, model_index: int) -> None:
        """Serve ``site`` with scorer ``model_index`` (its features are normalised for that model's type)."""
        self.model_for_site[site] = model_index
        self._apply_model_types(np.array([site]))

    def _end(self, arm: int, units: np.ndarray | int) -> np.ndarray:
        return self.start[arm, units] + self.length[arm, units]

    def _new_life(self, arm: int, u: int, day: float) -> None:
        self.k[arm, u] += 1
        if arm == 0 and self.retrainer is not None:
            self.retrainer.life_started(u, self.k[0, u])
        d0, mode, length = self.lives.get(np.array([u]), self.k[arm, u : u + 1])
        self.d0[arm, u], self.mode[arm, u], self.length[arm, u] = d0[0], mode[0], length[0]
        self.start[arm, u] = day
        if arm == 0:
            self.first_true[u] = np.inf
            self.fate[u] = 0

    def _record_end(self, u: int, day: float, kind: str, routed: bool) -> None:
        """Bookkeeping of a life end in arm 0 (degradation failure, prevented failure) or a sudden failure."""
        if kind != "sudden" and self.retrainer is not None:
            self.retrainer.life_ended(u, self.k[0, u], float(self._end(0, u)))
        predicted = kind != "sudden" and np.isfinite(self.first_true[u])
        lead = self._end(0, u) - self.first_true[u] if predicted else np.nan
        for key, val in (
            ("site", self.site[u]),
            ("day", day),
            ("kind", kind),
            ("predicted", predicted),
            ("lead", lead),
            ("routed", routed),
            ("fate", self.fate[u]),
        ):
            self.records[key].append(val)
        s, d, kpi = self.site[u], int(day), self.ctx.kpi
        if routed:
            if kind == "sudden":
                kpi.add("live_sudden_failures", s, 1.0, d)
            else:
                kpi.add("live_deg_ends", s, 1.0, d)
                kpi.add("live_deg_predicted", s, float(predicted), d)

    # --- SimPy jobs (hours) ------------------------------------------------------------------------------
    def breakdown(self, arm: int, u: int, kind: str, routed: bool) -> Generator:
        env, shops, svc = self.ctx.env, self.shops, self.svc
        t_fail = env.now
        f = self.bd_factor[u, self.n_fail[arm, u] % self.bd_factor.shape[1]]
        self.n_fail[arm, u] += 1
        yield env.timeout(svc["breakdown_wait_hours"] * f[0])
        with shops.res[arm][self.site[u]].request(priority=0) as req:
            yield req
            scale = svc["sudden_repair_scale"] if kind == "sudden" else 1.0
            yield env.timeout(svc["breakdown_repair_hours"] * scale * f[1])
        self.down[arm, u] = False
        if kind == "deg":
            self._new_life(arm, u, env.now / 24.0)
        hours, day, s, kpi = env.now - t_fail, int(env.now // 24), self.site[u], self.ctx.kpi
        kpi.add("unplanned_downtime_h" if arm == 0 else "unplanned_downtime_cf_h", s, hours, day)
        if routed:
            kpi.add(
                "live_unplanned_downtime_h" if arm == 0 else "live_unplanned_downtime_cf_h", s, hours, day
            )
            if arm == 1 and kind == "deg":
                kpi.add("live_unplanned_downtime_cf_deg_h", s, hours, day)

    def planned(self, u: int, delay_hours: float) -> Generator:
        env, shops, svc, kpi = self.ctx.env, self.shops, self.svc, self.ctx.kpi
        k_at_alert = self.k[0, u]
        yield env.timeout(svc["planned_lead_hours"] + delay_hours)
        with shops.res[0][self.site[u]].request(priority=1) as req:
            yield req
            if self.down[0, u] or self.k[0, u] != k_at_alert:  # it broke down before the visit
                self.pending[u] = False
                kpi.add("too_late", self.site[u], 1.0, int(env.now // 24))
                return
            self.down[0, u] = True
            hours = shops.duration(svc["planned_repair_hours"])
            yield env.timeout(hours)
        now_day, s = env.now / 24.0, self.site[u]
        d = int(now_day)
        self.down[0, u] = False
        self.pending[u] = False
        kpi.add("planned_downtime_h", s, hours, d)
        kpi.add("planned_visits", s, 1.0, d)
        if self.routed_sites()[s]:
            kpi.add("live_planned_downtime_h", s, hours, d)
        if self._end(0, u) - now_day <= svc["inspect_window_days"]:
            kpi.add("replacements", s, 1.0, d)
            self._record_end(u, now_day, "prevented", bool(self.routed_sites()[s]))
            self._new_life(0, u, now_day)
        else:
            kpi.add("no_fault_found", s, 1.0, d)

    # --- the day -----------------------------------------------------------------------------------------
    def failures(self, day: int, u_sudden: np.ndarray, routed: np.ndarray) -> None:
        env, kpi = self.ctx.env, self.ctx.kpi
        for arm in (0, 1):
            up = ~self.down[arm]
            deg = up & (self._end(arm, slice(None)) <= day + 1)
            sudden = up & ~deg & (u_sudden < self.p_sudden)
            for kind, mask in (("deg", deg), ("sudden", sudden)):
                idx = np.flatnonzero(mask)
                if len(idx) == 0:
                    continue
                self.down[arm, idx] = True
                sites = self.site[idx]
                r = routed[sites]
                kpi.add("failures" if arm == 0 else "failures_cf", sites, 1.0, day)
                kpi.add("live_failures" if arm == 0 else "live_failures_cf", sites[r], 1.0, day)
                for u, ru in zip(idx.tolist(), r.tolist(), strict=True):
                    if arm == 0:
                        self._record_end(u, day, kind, ru)
                    env.process(self.breakdown(arm, u, kind, ru))

    def scores(self, day: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Scores of ``rows`` today and their feature rows (None for the oracle)."""
        if self.m["kind"] == "oracle":
            rul = self._end(0, rows) - day
            hit = (rul <= self.m["oracle_lead_days"]) & (rul > 0)
            false = self.oracle_rng.random(len(rows)) < self.m["oracle_false_alert_rate"]
            return (hit | false).astype(np.float32), None
        X = self.sensors.features(rows)
        if self.mon_feed is not None and self.mon_feed.features is not None:
            X = self.mon_feed.features.map(self.site[rows], X)  # [monitor] feature_remap
        out = np.empty(len(rows), dtype=np.float32)
        mi = self.model_for_site[self.site[rows]]
        for j in np.unique(mi):
            sel = mi == j
            out[sel] = self.scorers[j].predict_proba(X[sel])
        if self.retrainer is not None:
            self.retrainer.log_rows(day, rows, X)
        return out, X

    def alerts(self, day: int, routed: np.ndarray) -> None:
        ctx, m, kpi = self.ctx, self.m, self.ctx.kpi
        scored = self.scored_sites()
        rows = np.flatnonzero(~self.down[0] & scored[self.site] & ~self.pending)
        if len(rows) == 0:
            return
        s, X = self.scores(day, rows)
        if self.mon_feed is not None:
            self.mon_feed.add(day, rows, s, X)
        fire = (s >= self.thr[self.site[rows]]) & (day - self.alert_last[rows] >= m["alert_suppress_days"])
        idx = rows[fire]
        if len(idx) == 0:
            return
        self.alert_last[idx] = day
        rul = self._end(0, idx) - day
        is_true = rul <= m["horizon_days"]
        self.first_true[idx[is_true]] = np.minimum(self.first_true[idx[is_true]], day)
        sites = self.site[idx]
        on = routed[sites]
        kpi.add("shadow_alerts", sites[~on], 1.0, day)
        sh = idx[~on & is_true]
        self.fate[sh] = np.maximum(self.fate[sh], 1)
        idx, sites, is_true = idx[on], sites[on], is_true[on]
        if len(idx) == 0:
            return
        kpi.add("alerts", sites, 1.0, day)
        kpi.add("alerts_true", sites[is_true], 1.0, day)
        kpi.add("alerts_false", sites[~is_true], 1.0, day)
        delivered, delay = self.route(idx, day)
        kpi.add("alerts_delivered", sites[delivered], 1.0, day)
        acted = delivered & (self.act_rng.random(len(idx)) < self.p_act(sites))
        kpi.add("alerts_acted", sites[acted], 1.0, day)
        fate = np.where(acted, 4, np.where(delivered, 3, 2))
        self.fate[idx[is_true]] = np.maximum(self.fate[idx[is_true]], fate[is_true])
        np.add.at(self.day_true, sites[delivered & is_true], 1.0)
        np.add.at(self.day_false, sites[delivered & ~is_true], 1.0)
        for u, dl in zip(idx[acted].tolist(), delay[acted].tolist(), strict=True):
            self.pending[u] = True
            ctx.env.process(self.planned(u, dl))

    def warm_up(self) -> None:
        """Run the sensor pipeline over the ``train_warmup_days`` before day 0 (as in training), so the EWMAs
        hold history when scoring starts; no failures, alerts or KPIs happen in the warm-up."""
        units = np.arange(self.n)
        for t in range(-self.m["train_warmup_days"], 0):
            d = self.lives.damage(self.d0[0], self.length[0], np.maximum(t - self.start[0], 0.0))
            self.sensors.step(self.sensor_rng, units, d, self.mode[0])

    def process(self) -> Generator:
        ctx, kpi = self.ctx, self.ctx.kpi
        counts = np.bincount(self.site, minlength=ctx.n_sites).astype(float)
        self.warm_up()
        while True:
            day = int(ctx.env.now // 24)
            if self.mon_feed is not None:
                self.mon_feed.start_day(day)
            routed = self.routed_sites().copy()
            u_sudden = self.sudden_rng.random(self.n)
            self.failures(day, u_sudden, routed)
            up = np.flatnonzero(~self.down[0])
            d = self.lives.damage(self.d0[0, up], self.length[0, up], day - self.start[0, up])
            self.sensors.step(self.sensor_rng, up, d, self.mode[0, up], self.sensor_drift(up))
            self.alerts(day, routed)
            kpi.add_site_vector("unit_days", counts, day)
            kpi.add_site_vector("live_unit_days", counts * routed, day)
            ctx.adoption.daily_update(routed, self.day_true, self.day_false, self.staff_shifts())
            kpi.set_max("p_act", np.where(routed, self.p_act(np.arange(ctx.n_sites)), 0.0), day)
            self.end_of_day(day)
            if self.mon_feed is not None:
                self.mon_feed.end_of_day(day, self.day_true, self.day_false)
            self.day_true[:] = 0
            self.day_false[:] = 0
            yield ctx.env.timeout(24.0)

    # --- results -----------------------------------------------------------------------------------------
    def record_arrays(self) -> dict[str, np.ndarray]:
        return {k: np.array(v) for k, v in self.records.items()}

    def headline(self) -> dict[str, float]:
        """Model and outcome KPIs at the deployed (routed) sites, arm 0 against arm 1."""
        k, r = self.ctx.kpi, self.record_arrays()
        if len(r["site"]) == 0:
            r = {key: np.zeros(0, dtype=bool if key in ("predicted", "routed") else float) for key in r}
            r["kind"] = np.zeros(0, dtype=str)
        routed, predicted = r["routed"].astype(bool), r["predicted"].astype(bool)
        deg = routed & (r["kind"] != "sudden")
        n_pred = float((predicted & routed).sum())
        prec, rec = alert_precision_recall(
            k.total("alerts_true"), k.total("alerts"), n_pred, float(deg.sum())
        )
        lt = lead_time_summary(r["lead"][routed & predicted])
        dt, dt_cf = k.total("live_unplanned_downtime_h"), k.total("live_unplanned_downtime_cf_h")
        alerts = k.total("alerts")
        return {
            "failures_predicted_share": n_pred / routed.sum() if routed.sum() else float("nan"),
            "warning_days_median": lt["median"],
            "warning_days_p10": lt["p10"],
            "warning_days_p90": lt["p90"],
            "warning_days_max": lt["max"],
            "alert_precision": prec,
            "alert_recall_degradation": rec,
            "failures_at_deployed_sites": float(routed.sum()),
            "sudden_failure_share": float((routed & (r["kind"] == "sudden")).sum() / max(routed.sum(), 1)),
            "alerts_delivered_share": k.total("alerts_delivered") / alerts if alerts else float("nan"),
            "act_rate": k.total("alerts_acted") / alerts if alerts else float("nan"),
            "failures_prevented": k.total("replacements"),
            "no_fault_found_visits": k.total("no_fault_found"),
            "visits_too_late": k.total("too_late"),
            "unplanned_downtime_relative_reduction": 1.0 - dt / dt_cf if dt_cf > 0 else float("nan"),
            "total_downtime_relative_reduction": 1.0 - (dt + k.total("live_planned_downtime_h")) / dt_cf
            if dt_cf > 0
            else float("nan"),
            "unplanned_downtime_h_deployed": dt,
            "unplanned_downtime_cf_h_deployed": dt_cf,
            "planned_downtime_h": k.total("planned_downtime_h"),
        }
