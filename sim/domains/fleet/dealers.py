"""Ford Transit fleet: dealer regions, the integration between the model and the dealers, dealer adoption.

An alert only helps if it reaches the dealer and the dealer acts:
- feed outages: each region's data feed goes down (``feed_outages_per_year``, mean ``feed_outage_days_mean``
  days, a two-state Markov chain per day); alerts raised while it is down are lost;
- the dealer's legacy service system loses an alert with ``legacy_failure_prob``;
- in a share of regions alerts are re-keyed by hand: lost with ``manual_drop_prob``, else delayed by an
  exponential ``manual_delay_hours_mean``;
- the dealer acts with the engine's adoption probability (trust, fatigue from false alarms, training) shifted
  by a per-dealer logit offset ``N(0, dealer_act_logit_sd)`` (adoption varies by dealer).
All vans are connected and scored (shadow) in every region; alerts are routed only in live regions, so the
run also measures what the model would have flagged where the rollout never arrived.
"""

from __future__ import annotations

import numpy as np

from sim.domains.maintenance.world import World


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


class FleetWorld(World):
    """The maintenance world with dealer integration and dealer-level adoption."""

    def setup_dealers(self, integ: dict, fleet: dict, vans_per_region: np.ndarray) -> None:
        rng = self.ctx.streams.generator("fleet.dealers")
        n = self.ctx.n_sites
        self.integ = integ
        self.dealer_offset = (
            rng.normal(0.0, integ["dealer_act_logit_sd"], n) if integ["dealer_act_logit_sd"] else np.zeros(n)
        )
        self.manual = rng.random(n) < integ["manual_regions_share"]
        self.integ_rng = self.ctx.streams.generator("fleet.integration")
        self.outage_rng = self.ctx.streams.generator("fleet.outages")
        self.feed_down = np.zeros(n, dtype=bool)
        self.technicians = np.maximum(1.0, vans_per_region * fleet["technicians_per_100_vans"] / 100.0)
        self.outage_days = np.zeros(n)

    def scored_sites(self) -> np.ndarray:
        return np.ones(self.ctx.n_sites, dtype=bool)

    def monitored_sites(self) -> np.ndarray:
        """Every region from day 0 (all vans are scored in shadow): references precede any go-live."""
        return self.scored_sites()

    def _site_param(self, name: str, base: float) -> np.ndarray:
        vec = np.full(self.ctx.n_sites, base)
        return self.ctx.drift.apply(name, vec, self.ctx.env.now)

    def route(self, units: np.ndarray, day: int) -> tuple[np.ndarray, np.ndarray]:
        ig, rng = self.integ, self.integ_rng
        sites = self.site[units]
        legacy = np.clip(self._site_param("legacy_failure_prob", ig["legacy_failure_prob"]), 0, 1)[sites]
        u = rng.random((3, len(units)))
        delivered = ~self.feed_down[sites] & (u[0] >= legacy)
        manual = self.manual[sites]
        delivered &= ~(manual & (u[1] < ig["manual_drop_prob"]))
        mean = ig["manual_delay_hours_mean"]
        delay = np.where(manual, -np.log1p(-u[2]) * mean, 0.0) if mean > 0 else np.zeros(len(units))
        return delivered, delay

    def p_act(self, sites: np.ndarray) -> np.ndarray:
        base = self.ctx.adoption.p_act()[sites]
        return 1.0 / (1.0 + np.exp(-(_logit(base) + self.dealer_offset[sites])))

    def staff_shifts(self) -> np.ndarray:
        return self.technicians

    def end_of_day(self, day: int) -> None:
        """Advance each region's feed (up/down) for tomorrow and log outages that start."""
        ig = self.integ
        p_start = np.clip(self._site_param("feed_outage_per_day", ig["feed_outages_per_year"] / 365.0), 0, 1)
        p_end = 1.0 / ig["feed_outage_days_mean"]
        u = self.outage_rng.random(self.ctx.n_sites)
        starts = ~self.feed_down & (u < p_start)
        ends = self.feed_down & (u < p_end)
        self.feed_down = (self.feed_down | starts) & ~ends
        self.outage_days += self.feed_down & self.ctx.live
        for s in np.flatnonzero(starts & self.ctx.live):
            self.ctx.events.log(
                self.ctx.env.now,
                "feed_outage",
                site=self.ctx.site_names[s],
                detail="telematics feed to the dealer system down",
            )
