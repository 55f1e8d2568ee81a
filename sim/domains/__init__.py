"""Case-study domains. The engine finds a domain by the name in ``[scenario] domain``, never by import.

Each domain module provides:
- ``SCHEMA``: its scenario sections, ``{section: {key: Rule}}``;
- ``DRIFTABLE``: generator parameters that ``[[drift]]`` entries may shift, ``{name: doc}``;
- ``KPIS``: ``{kpi_name: "sum" | "max"}`` recorded per site and day;
- ``check(source, sections)``: cross-field validation;
- ``build(ctx)``: create sites, model and SimPy processes inside a run context;
- ``headline(ctx) -> dict[str, float]``: the run's headline KPIs;
- ``figures(kpis, events, summary, out_dir) -> list[Path]``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

DOMAINS: dict[str, str] = {
    "sepsis": "sim.domains.sepsis",
    "fleet": "sim.domains.fleet",
    "plant": "sim.domains.plant",
}


def load_domain(name: str) -> ModuleType:
    return importlib.import_module(DOMAINS[name])
