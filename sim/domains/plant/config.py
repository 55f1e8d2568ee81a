"""The plant domain's scenario sections (rules as data). Sources belong in the scenario file."""

from __future__ import annotations

from sim.domains.maintenance.degradation import DEGRADATION, SENSOR_DRIFTABLE, TYPE_SCHEMA
from sim.domains.maintenance.model import MODEL
from sim.domains.maintenance.service import SERVICE
from sim.schema import Rule

PLANTS = {
    "types": Rule(
        "list[str]", min_len=1, doc="machine type of each plant, lighthouse first (one plant each)"
    ),
    "lines_per_plant": Rule("int", 10, min=1, max=1000),
    "machines_per_line": Rule("int", 20, min=1, max=1000),
    "technicians_per_line": Rule("float", 1.0, min=0.01, max=100, doc="maintenance staff who see alerts"),
    "duty_concentration": Rule("float", 1.0, min=0.01, max=100, doc="Dirichlet concentration of product mix"),
    "machine_types": Rule("tables", [], item_schema=TYPE_SCHEMA, doc="machine types and how they differ"),
    "source": Rule("str", ""),
}

RETRAINING = {
    "mode": Rule(
        "str",
        "local",
        choices=("local", "none"),
        doc="local: each plant shadows the lighthouse model, then runs a model retrained on its own "
        "machines; none: the lighthouse model everywhere from go-live",
    ),
    "local_data_days": Rule(
        "int", 30, min=0, max=3650, doc="days of local data before the local model goes live"
    ),
    "source": Rule("str", ""),
}

SCHEMA = {
    "plants": PLANTS,
    "retraining": RETRAINING,
    "degradation": DEGRADATION,
    "service": SERVICE,
    "model": MODEL,
}

DRIFTABLE = {
    "act_shift": "logit shift of crews' probability of acting on alerts (e.g. a staffing crisis)",
    **SENSOR_DRIFTABLE,
}
