"""A manufacturer's plants: lines of machines, a lighthouse model, per-plant retraining and trained crews.

The lighthouse plant (wave 0) runs the model trained on its machine type. Other plants have other machine
types (sensor baselines and fault signatures differ: ``machine_types``), so the lighthouse model sees shifted
features there: false alerts rise and faults show on sensors it does not watch. With ``retraining.mode =
"local"`` a plant that goes live first scores in shadow (alerts are not sent to crews) for
``local_data_days`` while local data accumulate, then switches to a model trained on its own machine type and
routes alerts to its crews; with ``"none"`` the lighthouse model alerts crews from go-live. Crews act with
the engine's adoption probability (trust, alert fatigue per technician, training per wave).
"""

from __future__ import annotations

import numpy as np

from sim.domains.maintenance.world import World


class PlantWorld(World):
    """The maintenance world with plant go-live, shadow periods and per-plant models."""

    def setup_plants(
        self, plants: dict, retraining: dict, type_names: list[str], local_model: dict[int, int]
    ) -> None:
        n = self.ctx.n_sites
        self.retraining = retraining
        self.plant_type = np.array([type_names.index(t) for t in plants["types"]])
        self.type_names = type_names
        self.local_model = local_model  # machine type index -> scorer index
        self.ready_day = np.full(n, np.inf)
        self.seen_live = np.zeros(n, dtype=bool)
        self.lines = plants["lines_per_plant"]
        self.technicians = np.full(n, plants["lines_per_plant"] * plants["technicians_per_line"])

    def monitored_sites(self) -> np.ndarray:
        """Live plants scoring with the model their crews get (local mode: after the shadow period)."""
        target = np.array([self.local_model[t] for t in self.plant_type]) \
            if self.retraining["mode"] == "local" else np.zeros(len(self.plant_type), np.int64)
        return self.ctx.live & (np.asarray(self.family)[self.model_for_site] == target)

    def ready(self) -> np.ndarray:
        return self.ctx.live & (self.ready_day <= self.ctx.env.now / 24.0)

    def routed_sites(self) -> np.ndarray:
        return self.ready()

    def p_act(self, sites: np.ndarray) -> np.ndarray:
        base = self.ctx.adoption.p_act()[sites]
        shift = self.ctx.drift.apply("act_shift", np.zeros(self.ctx.n_sites), self.ctx.env.now)[sites]
        if not np.any(shift):
            return base
        return 1.0 / (1.0 + np.exp(-(np.log(base / (1 - base)) + shift)))

    def staff_shifts(self) -> np.ndarray:
        return self.technicians

    def end_of_day(self, day: int) -> None:
        ctx, names = self.ctx, self.ctx.site_names
        lh_type = self.model_type[0]
        for s in np.flatnonzero(ctx.live & ~self.seen_live):
            self.seen_live[s] = True
            mine = self.type_names[self.plant_type[s]]
            if self.retraining["mode"] == "local":
                self.ready_day[s] = day + 1 + self.retraining["local_data_days"]
                ctx.events.log(
                    ctx.env.now,
                    "shadow_start",
                    site=names[s],
                    detail=f"lighthouse model in shadow on type {mine} machines; collecting local data",
                )
            else:
                self.ready_day[s] = day + 1
                same = self.plant_type[s] == lh_type
                ctx.events.log(
                    ctx.env.now,
                    "lighthouse_model_live",
                    site=names[s],
                    detail=f"lighthouse model (trained on type {self.type_names[lh_type]}) alerts crews "
                    f"on type {mine} machines{'' if same else ' without local retraining'}",
                )
        if self.retraining["mode"] == "local":
            for s in np.flatnonzero(ctx.live & (self.ready_day == day + 1)):
                self.set_model(s, self.local_model[self.plant_type[s]])
                ctx.events.log(
                    ctx.env.now + 24.0,
                    "local_model_live",
                    site=names[s],
                    detail=f"model retrained on {self.retraining['local_data_days']} days of local "
                    f"type {self.type_names[self.plant_type[s]]} data; alerts go to crews",
                )
