"""nox sessions; dependencies come from pyproject.toml's optional-dependency groups."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint"]
PY = "3.11"


@nox.session(python=PY)
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=PY)
def lint(session: nox.Session) -> None:
    session.install("-e", ".[lint]")
    session.run("ruff", "check", "sim", "models", "perf", "tests")


@nox.session(python=PY)
def demo(session: nox.Session) -> None:
    session.install("-e", ".")
    session.run("purgatory", "run", "scenarios/sepsis_spot.toml", *session.posargs)


@nox.session(python=PY)
def bench(session: nox.Session) -> None:
    """pytest-benchmark micro-benchmarks under perf/ (not part of the default tests), saved as JSON."""
    session.install("-e", ".[test]")
    session.run("pytest", "perf", "--benchmark-only", "--benchmark-json", "results/bench/micro.json",
                *session.posargs)
