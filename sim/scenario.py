"""Scenario files: load TOML, resolve ``extends``, validate every section, hash, apply overrides.

A scenario is the frozen, fully resolved and validated content of a TOML file. Sections:
``[scenario]`` (name, domain, horizon, seeds), the engine's ``[rollout]``, ``[adoption]``, ``[monitor]``,
``[retrain]``, ``[serving]``, ``[[drift]]``, and the sections the domain declares (its ``SCHEMA``). A variant
file can say ``extends = "base.toml"`` in ``[scenario]`` and override only what differs (tables merge key by
key; arrays are replaced whole).
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sim import adoption, drift, monitor, retrain, rollout
from sim.domains import DOMAINS, load_domain
from sim.errors import ScenarioError
from sim.kpi import ENGINE_KPIS
from sim.schema import Rule, check_value, validate_section
from sim.serving import service as serving_service

SCENARIO_SCHEMA: dict[str, Rule] = {
    "name": Rule("str", doc="short name; results go to results/<name>/"),
    "domain": Rule("str", choices=tuple(DOMAINS), doc="case-study domain module"),
    "description": Rule("str", "", doc="what this scenario shows"),
    "extends": Rule("str", "", doc="path of a base scenario file, relative to this file"),
    "horizon_days": Rule("int", 365, min=1, max=3650, doc="simulated days"),
    "root_seed": Rule("int", 20170101, min=0, doc="root of all randomness; replications are spawned from it"),
    "seeds": Rule("int", 10, min=1, max=1000, doc="default number of replications for `purgatory run`"),
    "report_period_days": Rule("int", 7, min=1, max=365, doc="period of rows in kpis.parquet"),
}

ENGINE_SECTIONS: dict[str, dict[str, Rule]] = {
    "scenario": SCENARIO_SCHEMA,
    "rollout": rollout.SCHEMA,
    "adoption": adoption.SCHEMA,
    "monitor": monitor.SCHEMA,
    "retrain": retrain.SCHEMA,
    "serving": serving_service.SCHEMA,
}
ENGINE_TABLE_ARRAYS: dict[str, Rule] = {"drift": Rule("tables", [], item_schema=drift.ITEM_SCHEMA)}


def _deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _freeze(obj: Any) -> Any:
    if isinstance(obj, dict):
        return MappingProxyType({k: _freeze(v) for k, v in obj.items()})
    if isinstance(obj, list):
        return tuple(_freeze(v) for v in obj)
    return obj


def _thaw(obj: Any) -> Any:
    if isinstance(obj, MappingProxyType | dict):
        return {k: _thaw(v) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return [_thaw(v) for v in obj]
    return obj


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. ``data`` is read-only; ``get("section.key")`` reads one value."""

    source: str
    data: MappingProxyType

    @property
    def name(self) -> str:
        return self.data["scenario"]["name"]

    @property
    def domain(self) -> str:
        return self.data["scenario"]["domain"]

    def section(self, name: str) -> MappingProxyType:
        return self.data[name]

    def get(self, dotted: str) -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            node = node[part]
        return node

    def to_dict(self) -> dict:
        return _thaw(self.data)

    @property
    def hash(self) -> str:
        """sha256 of the canonical resolved content (independent of file layout, comments, extends)."""
        content = self.to_dict()
        content["scenario"] = {k: v for k, v in content["scenario"].items() if k != "extends"}
        blob = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()


def _read_toml(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    source = str(path)
    if path in chain:
        raise ScenarioError(source, "scenario.extends", str(path), "must not extend itself (cycle)")
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ScenarioError(source, "<file>", str(path), "file not found") from None
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(source, "<toml>", str(err), "must be valid TOML") from None
    extends = raw.get("scenario", {}).get("extends", "") if isinstance(raw.get("scenario"), dict) else ""
    if extends:
        if not isinstance(extends, str):
            raise ScenarioError(source, "scenario.extends", extends, "must be a string (a path)")
        base = _read_toml((path.parent / extends).resolve(), (*chain, path))
        raw = _deep_merge(base, raw)
    return raw


def validate(source: str, raw: dict) -> Scenario:
    """Validate a raw (already merged) scenario dict; raises ScenarioError on the first problem."""
    if not isinstance(raw.get("scenario"), dict):
        raise ScenarioError(
            source, "scenario", raw.get("scenario", "<missing>"), "a [scenario] table is required"
        )
    domain_name = raw["scenario"].get("domain", "<missing>")
    if domain_name not in DOMAINS:
        raise ScenarioError(source, "scenario.domain", domain_name, f"must be one of {', '.join(DOMAINS)}")
    domain = load_domain(domain_name)
    sections = {**ENGINE_SECTIONS, **domain.SCHEMA}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in sections and key not in ENGINE_TABLE_ARRAYS:
            allowed = ", ".join(sorted([*sections, *ENGINE_TABLE_ARRAYS]))
            raise ScenarioError(source, key, value, f"unknown section; allowed: {allowed}")
    for name, schema in sections.items():
        out[name] = validate_section(source, name, schema, raw.get(name, {}))
    for name, rule in ENGINE_TABLE_ARRAYS.items():
        out[name] = check_value(source, name, rule, raw.get(name, []))
    domain.check(source, out)  # cross-field rules (e.g. drift params the domain knows)
    drift.check(source, out["drift"], domain.DRIFTABLE)
    rollout.check(source, out["rollout"], domain.site_count(out), {**ENGINE_KPIS, **domain.KPIS})
    retrain.check(source, out["retrain"])
    serving_service.check(source, out["serving"])
    if out["serving"]["enabled"] and not getattr(domain, "SERVED_SCORING", False):
        served = ", ".join(d for d in DOMAINS if getattr(load_domain(d), "SERVED_SCORING", False))
        raise ScenarioError(source, "serving.enabled", True,
                            f"domain {domain_name!r} does not route its scoring through [serving] "
                            f"(domains that do: {served})")
    if out["monitor"]["features"] and not getattr(domain, "FEATURE_MONITOR", False):
        watched = ", ".join(d for d in DOMAINS if getattr(load_domain(d), "FEATURE_MONITOR", False))
        raise ScenarioError(source, "monitor.features", True,
                            f"domain {domain_name!r} has no feature-window monitor "
                            f"(domains that do: {watched})")
    if out["monitor"]["silent_next_wave"]:
        if not getattr(domain, "SILENT_MODE", False):
            silent = ", ".join(d for d in DOMAINS if getattr(load_domain(d), "SILENT_MODE", False))
            raise ScenarioError(source, "monitor.silent_next_wave", True,
                                f"domain {domain_name!r} cannot score sites silently before go-live "
                                f"(domains that can: {silent})")
        if not out["monitor"]["enabled"]:
            raise ScenarioError(source, "monitor.silent_next_wave", True,
                                "silent scoring feeds the monitor: it needs monitor.enabled = true")
    return Scenario(source, _freeze(out))


def load_scenario(path: str | Path) -> Scenario:
    """Load, merge ``extends`` and validate a scenario file."""
    path = Path(path)
    return validate(str(path), _read_toml(path.resolve()))


def apply_overrides(scenario: Scenario, overrides: dict[str, Any], source: str = "overrides") -> Scenario:
    """A new validated scenario with dotted keys replaced, e.g. ``{"adoption.act_logit_base": 1.5}``.

    Raises ScenarioError naming ``source`` and the key if a key does not exist or a value is invalid.
    """
    raw = scenario.to_dict()
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node = raw
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ScenarioError(source, dotted, value, "unknown parameter (no such section)")
            node = node[part]
        if parts[-1] not in node:
            allowed = ", ".join(sorted(f"{'.'.join(parts[:-1])}.{k}" for k in node))
            raise ScenarioError(source, dotted, value, f"unknown parameter; allowed: {allowed}")
        node[parts[-1]] = value
    return validate(f"{scenario.source} + {source}", raw)


def domain_module(scenario: Scenario):
    return importlib.import_module(DOMAINS[scenario.domain])
