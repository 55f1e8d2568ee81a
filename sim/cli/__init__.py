"""The ``purgatory`` command line: one small module per sub-command, each calling into its subsystem.

Sub-commands live in their own modules (``sim/cli/<command>.py``) and are imported only when used, so
``purgatory run`` never pays for the server or benchmark stacks. Every sub-command module exposes
``main(argv: list[str]) -> int``; a :class:`~sim.errors.UserError` it raises is printed as one line, exit 2.
"""

from __future__ import annotations

import importlib
import sys

from sim.errors import UserError

#: sub-command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("sim.cli.run", "run a scenario over seeds; write KPIs, events, summary and figures"),
    "sweep": ("sim.cli.sweep", "run a sweep spec (parameter axes x seeds) locally or on Dask"),
    "drift-eval": ("sim.cli.drift_eval", "evaluate drift detectors on streams with known change points"),
    "serve": ("sim.cli.serve", "serve registry models over the Open Inference Protocol (V2 REST)"),
    "readiness": (
        "sim.cli.readiness",
        "peak request rate a scenario needs and the serving workers to meet its SLO",
    ),
    "impact": ("sim.cli.impact", "the AI's effect estimated from a run's staggered rollout vs the true one"),
    "phasing": ("sim.cli.phasing", "big bang vs phased: value at risk, bad-model exposure, time to value"),
    "bench batch": ("sim.cli.bench_batch", "batch scoring benchmark from 1k to 100M records"),
    "bench load": ("sim.cli.bench_load", "open- and closed-loop HTTP load generator against a V2 server"),
}


def _usage() -> str:
    lines = [
        "usage: purgatory COMMAND [options]   (purgatory COMMAND --help for its options)",
        "",
        "commands:",
    ]
    lines += [f"  {name:<12} {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    name = argv[0]
    rest = argv[1:]
    if name == "bench":
        sub = rest[0] if rest else ""
        name, rest = f"bench {sub}", rest[1:]
    if name not in COMMANDS:
        print(f"purgatory: unknown command {name!r}; allowed: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module_name = COMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name == module_name:
            print(f"purgatory: command {name!r} is not available in this version", file=sys.stderr)
            return 2
        raise
    try:
        return int(module.main(rest) or 0)
    except UserError as err:
        print(f"purgatory {name}: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"purgatory {name}: interrupted", file=sys.stderr)
        return 130

