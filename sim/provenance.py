"""Where a result came from: the git commit and package version every results file records.

Results describe themselves (schema version, package version, git commit, seed, scenario hash) and carry no
wall-clock time, so two runs of the same code and scenario diff clean. Every writer of results (runs, sweeps,
benchmarks, the drift evaluation) takes these two facts from here.
"""

from __future__ import annotations

import subprocess
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The checkout's HEAD commit, or ``"unknown"`` outside a git checkout (an installed wheel)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_version() -> str:
    """The installed pilot-purgatory version, or ``"0+unknown"`` when it is not installed."""
    try:
        return version("pilot-purgatory")
    except PackageNotFoundError:
        return "0+unknown"
