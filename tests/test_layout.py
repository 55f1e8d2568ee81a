"""The layout keeps its promises: every package is a package, the engine never imports a case study, no case
study imports the scenario loader or the results writer, and long modules say why they are one piece."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("sim", "models", "perf")
#: the domain-agnostic engine and its subsystems
ENGINE = [p for p in (ROOT / "sim").rglob("*.py") if "domains" not in p.parts]
DOMAINS = list((ROOT / "sim" / "domains").rglob("*.py"))


def _is_module(dotted: str) -> bool:
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` or ``from ... import`` in the file names (function-level ones included);
    ``from package import name`` counts ``package.name`` only when that is a module of the project."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names if _is_module(f"{node.module}.{a.name}"))
    return out


def test_every_folder_of_python_modules_is_a_package() -> None:
    """A folder without ``__init__.py`` imports from a checkout but is left out of an installed wheel."""
    missing = sorted(
        str(d.relative_to(ROOT))
        for top in PACKAGES
        for d in {p.parent for p in (ROOT / top).rglob("*.py")}
        if not (d / "__init__.py").exists()
    )
    assert not missing


@pytest.mark.parametrize("path", ENGINE, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_engine_never_imports_a_case_study(path: Path) -> None:
    if path.parts[-2] == "cli" or (path.name == "__init__.py" and path.parent.name == "domains"):
        return  # commands may call into a domain; sim/domains/__init__.py is the registry by name
    bad = {m for m in imported_modules(path) if m.startswith("sim.domains.")}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", DOMAINS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_case_study_imports_upward_into_the_loader_or_the_writers(path: Path) -> None:
    upward = ("sim.scenario", "sim.results", "sim.engine", "sim.cli", "sim.sweeps")
    bad = {m for m in imported_modules(path) if m.startswith(upward)}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_long_modules_say_why_they_are_one_piece() -> None:
    long = []
    for top in PACKAGES:
        for path in (ROOT / top).rglob("*.py"):
            text = path.read_text()
            if len(text.splitlines()) > 400:
                doc = ast.get_docstring(ast.parse(text)) or ""
                if "one module" not in doc and "one piece" not in doc:
                    long.append(str(path.relative_to(ROOT)))
    assert not long, f"modules over 400 lines without a docstring sentence on why they are one piece: {long}"
