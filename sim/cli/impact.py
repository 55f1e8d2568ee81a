"""``purgatory impact RESULTS_DIR [--control not_yet|never] [--out DIR]``: how much did the AI change the KPI?

Estimates the effect of going live on the domain's outcome KPI from a run's staggered rollout (naive
before/after, two-way fixed effects, Callaway & Sant'Anna), prints them next to the simulator's true effect,
and writes ``impact.json``, ``impact.csv``, ``rollout_timeline.png``, ``event_study.png`` and
``estimator_table.png`` into ``RESULTS_DIR/impact/`` (written whole or not at all).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from sim.cli.args import Parser
from sim.impact import estimators
from sim.staging import staged_folder


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="purgatory impact",
               description="Estimate the AI's effect on the outcome KPI from a run's staggered rollout.")
    p.add_argument("results", type=Path, help="results folder of `purgatory run` (kpis.parquet, ...)")
    p.add_argument("--control", choices=estimators.CONTROLS, default="not_yet",
                   help="Callaway-Sant'Anna controls: sites not yet live (default) or never live")
    p.add_argument("--out", type=Path, help="output folder (default: RESULTS_DIR/impact)")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    from sim.impact import plots, report  # noqa: PLC0415

    summary, kpis, events = report.load_results(args.results)
    result = report.analyse(summary, kpis, args.control)  # raises before anything is written
    report.print_table(result)
    out = args.out or args.results / "impact"
    with staged_folder(out) as tmp:
        meta = summary["meta"]
        first = result["per_run"][0]["run_id"]
        n_waves = int(kpis["wave"].max()) + 1 if "wave" in kpis else 1
        scen = meta["scenario"]
        figs = [
            plots.rollout_timeline(events, first, n_waves=n_waves, horizon_days=meta["horizon_days"],
                                   title=f"{scen}: rollout timeline of run {first}", out=tmp),
            plots.event_study(result["event_time"][first], result["label"], result["period_days"],
                              title=f"{scen}, run {first}: effect by time since go-live vs the true effect",
                              out=tmp),
            plots.estimator_table(result["summary"], f"{scen}: estimators vs the simulator's true effect on "
                                  f"{result['label']} (means over {len(result['event_time'])} run(s))", tmp),
        ]
        result["figures"] = [f.name for f in figs]
        pd.DataFrame(result["per_run"]).to_csv(tmp / "impact.csv", index=False)
        (tmp / "impact.json").write_text(json.dumps(result, indent=2, default=float))
    print(f"wrote {out}/ (impact.json, impact.csv, {', '.join(result['figures'])})")
    return 0
