"""Validation rules as data.

Each section of a scenario file is described by a dict ``key -> Rule``. ``validate_section`` fills defaults,
rejects unknown keys and checks types and ranges; every error names the file, the dotted key, the bad value
and what is allowed (one line), raised as :class:`sim.errors.ScenarioError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sim.errors import ScenarioError

REQUIRED = object()

_SCALAR_KINDS = {"int", "float", "bool", "str"}
_KINDS = _SCALAR_KINDS | {"list[int]", "list[float]", "list[str]", "tables"}


@dataclass(frozen=True)
class Rule:
    """One key's rule: kind, default (or REQUIRED), numeric bounds, allowed choices, a one-line doc."""

    kind: str
    default: Any = REQUIRED
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    doc: str = ""
    min_len: int = 0
    allow_inf: bool = False
    item_schema: dict[str, Rule] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"Rule kind (={self.kind!r}) must be one of {sorted(_KINDS)}")

    def allowed(self) -> str:
        """Human description of what the rule accepts."""
        base = {
            "int": "an integer",
            "float": "a number",
            "bool": "true or false",
            "str": "a string",
            "list[int]": "a list of integers",
            "list[float]": "a list of numbers",
            "list[str]": "a list of strings",
            "tables": "an array of tables",
        }[self.kind]
        parts = [base]
        if self.choices is not None:
            parts = [f"one of {', '.join(repr(c) for c in self.choices)}"]
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        if self.min_len:
            parts.append(f"with at least {self.min_len} item(s)")
        return "must be " + " ".join(parts[:1]) + ("" if len(parts) == 1 else ", " + ", ".join(parts[1:]))


def _check_scalar(kind: str, value: Any, allow_inf: bool = False) -> Any:
    """Return the value coerced to ``kind`` or raise TypeError."""
    if kind == "bool":
        if isinstance(value, bool):
            return value
    elif kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind == "float":
        if (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and not math.isnan(value)
            and (allow_inf or math.isfinite(value))
        ):
            return float(value)
    elif kind == "str" and isinstance(value, str):
        return value
    raise TypeError


def check_value(source: str, key: str, rule: Rule, value: Any) -> Any:
    """Validate one value against its rule and return it normalised."""
    if rule.kind == "tables":
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ScenarioError(source, key, value, rule.allowed())
        return [
            validate_section(source, f"{key}[{i}]", rule.item_schema or {}, v) for i, v in enumerate(value)
        ]
    if rule.kind.startswith("list["):
        inner = rule.kind[5:-1]
        if not isinstance(value, list) or len(value) < rule.min_len:
            raise ScenarioError(source, key, value, rule.allowed())
        try:
            items = [_check_scalar(inner, v, rule.allow_inf) for v in value]
        except TypeError:
            raise ScenarioError(source, key, value, rule.allowed()) from None
    else:
        try:
            items = [_check_scalar(rule.kind, value, rule.allow_inf)]
        except TypeError:
            raise ScenarioError(source, key, value, rule.allowed()) from None
    for item in items:
        if rule.choices is not None and item not in rule.choices:
            raise ScenarioError(source, key, value, rule.allowed())
        if rule.min is not None and item < rule.min:
            raise ScenarioError(source, key, value, rule.allowed())
        if rule.max is not None and item > rule.max:
            raise ScenarioError(source, key, value, rule.allowed())
    return items if rule.kind.startswith("list[") else items[0]


def validate_section(source: str, section: str, schema: dict[str, Rule], data: Any) -> dict:
    """Validate a table against ``schema``: defaults filled, unknown keys rejected."""
    if not isinstance(data, dict):
        raise ScenarioError(source, section, data, "must be a table")
    out = {}
    for key in data:
        if key not in schema:
            raise ScenarioError(
                source,
                f"{section}.{key}",
                data[key],
                f"unknown key; allowed keys in [{section}]: {', '.join(sorted(schema))}",
            )
    for key, rule in schema.items():
        dotted = f"{section}.{key}"
        if key in data:
            out[key] = check_value(source, dotted, rule, data[key])
        elif rule.default is REQUIRED:
            raise ScenarioError(source, dotted, "<missing>", f"is required; {rule.allowed()}")
        else:
            out[key] = rule.default
    return out
