"""The fleet domain's scenario sections (rules as data). Sources belong in the scenario file."""

from __future__ import annotations

from sim.domains.maintenance.degradation import DEGRADATION, SENSOR_DRIFTABLE
from sim.domains.maintenance.model import MODEL
from sim.domains.maintenance.service import SERVICE
from sim.schema import Rule

FLEET = {
    "regions": Rule("int", 12, min=1, max=500, doc="dealer regions (the rollout's sites)"),
    "vans": Rule("int", 20000, min=10, max=2_000_000, doc="vans simulated"),
    "vans_represented": Rule(
        "float", 0.0, min=0, doc="vans the simulated ones stand for in costs (0: themselves)"
    ),
    "region_size_sigma": Rule("float", 0.4, min=0, max=3, doc="log-sd of vans per region"),
    "duty_concentration": Rule(
        "float", 1.0, min=0.01, max=100, doc="Dirichlet concentration of duty profiles"
    ),
    "technicians_per_100_vans": Rule("float", 1.0, min=0.01, max=100, doc="dealer staff handling alerts"),
    "downtime_cost_gbp_per_day": Rule("float", 600.0, min=0, doc="cost of a van off the road per day"),
    "visit_cost_gbp": Rule("float", 150.0, min=0, doc="labour of a booked inspection / replacement visit"),
    "programme_cost_gbp_per_region_day": Rule(
        "float", 500.0, min=0, doc="running cost of the programme per live region and day"
    ),
    "source": Rule("str", ""),
}

INTEGRATION = {
    "feed_outages_per_year": Rule("float", 0.0, min=0, max=365, doc="data-feed outages per region-year"),
    "feed_outage_days_mean": Rule("float", 3.0, min=0.1, max=365, doc="mean length of an outage"),
    "legacy_failure_prob": Rule("float", 0.0, min=0, max=1, doc="alert lost by the dealer's legacy system"),
    "manual_regions_share": Rule("float", 0.0, min=0, max=1, doc="share of regions re-keying alerts by hand"),
    "manual_drop_prob": Rule("float", 0.0, min=0, max=1, doc="alert never re-keyed (manual step)"),
    "manual_delay_hours_mean": Rule("float", 0.0, min=0, doc="extra delay of a manual step (exponential)"),
    "dealer_act_logit_sd": Rule("float", 0.0, min=0, max=10, doc="dealer-to-dealer spread of acting (logit)"),
    "source": Rule("str", ""),
}

SCHEMA = {
    "fleet": FLEET,
    "integration": INTEGRATION,
    "degradation": DEGRADATION,
    "service": SERVICE,
    "model": MODEL,
}

DRIFTABLE = {
    "legacy_failure_prob": "share of alerts lost by dealer systems (integration fault), added to the base",
    "feed_outage_per_day": "probability a region's feed goes down on a day, added to the base",
    **SENSOR_DRIFTABLE,
}

#: the one vehicle type (the Transit); offsets zero, so the model's reference type is the fleet's type
VAN_TYPE = [
    {
        "name": "transit",
        "offset_sd": 0.0,
        "signature_mix": 0.0,
        "life_scale": 1.0,
        "sudden_scale": 1.0,
        "seed": 0,
    }
]
