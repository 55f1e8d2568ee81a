#!/usr/bin/env python3
"""The two quickstart commands, with nothing but Python 3.11+ and pip on the machine.

    python3 tasks.py demo     # install into .venv (first time), run the sepsis case study, write results
    python3 tasks.py test     # install into .venv (first time), run the test suite

Other tasks: ``lint``, ``bench`` (pytest-benchmark micro-benchmarks and perf/ benchmarks). The virtual
environment is refreshed when pyproject.toml changes. Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def ensure_env(extras: str = "test,lint") -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"tasks.py: Python {sys.version.split()[0]} found; pilot-purgatory needs Python 3.11+")
    stamp = VENV / ".installed"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == want:
        return
    if not PY.exists():
        print("tasks.py: creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print(f"tasks.py: installing pilot-purgatory[{extras}] into .venv (first run takes a few minutes)", flush=True)
    subprocess.run([str(PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "-e", f".[{extras}]"], cwd=ROOT, check=True)
    stamp.write_text(want)


def main(argv: list[str]) -> int:
    task, rest = (argv[0], argv[1:]) if argv else ("", [])
    if task == "demo":
        ensure_env()
        return subprocess.call([str(BIN / "purgatory"), "run", "scenarios/sepsis_spot.toml", *rest], cwd=ROOT)
    if task == "test":
        ensure_env()
        return subprocess.call([str(PY), "-m", "pytest", *rest], cwd=ROOT)
    if task == "lint":
        ensure_env()
        return subprocess.call([str(BIN / "ruff"), "check", "sim", "models", "perf", "tests", *rest], cwd=ROOT)
    if task == "bench":
        ensure_env()
        return subprocess.call([str(PY), "-m", "pytest", "perf", "--benchmark-only",
                                "--benchmark-json", "results/bench/micro.json", *rest], cwd=ROOT)
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
