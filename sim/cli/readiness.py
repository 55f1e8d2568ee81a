"""``purgatory readiness SCENARIO.toml``: the serving workers a scenario needs at full rollout.

States the peak request rate once every site is live, the capacity of one worker (measured or given) and the
workers that keep the simulated p99 within the SLO at the peak times a headroom factor
(:mod:`sim.serving.readiness`).
"""

from __future__ import annotations

from pathlib import Path

from sim.cli.args import Parser
from sim.errors import UserError
from sim.scenario import load_scenario
from sim.serving.readiness import DEFAULT_CALIBRATION, p99_at, peak_demand, worker_curve, workers_needed


def main(argv: list[str]) -> int:
    """Entry point of ``purgatory readiness``; raises UserError for bad input."""
    p = Parser(prog="purgatory readiness", description=__doc__.split("\n")[0])
    p.add_argument("scenario")
    p.add_argument(
        "--peak-rate", type=float, default=None, help="req/s at full rollout (else the domain's hook)"
    )
    p.add_argument("--calibration", type=Path, default=None, help=f"default {DEFAULT_CALIBRATION}")
    p.add_argument(
        "--capacity", type=float, default=None, help="req/s one worker sustains (instead of a file)"
    )
    p.add_argument("--slo-ms", type=float, default=100.0)
    p.add_argument("--headroom", type=float, default=1.5, help="size for peak x this factor")
    p.add_argument("--max-batch", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.headroom < 1 or args.slo_ms <= 0 or args.max_batch < 1:
        raise UserError(
            f"--headroom = {args.headroom} (>= 1), --slo-ms = {args.slo_ms} (> 0), "
            f"--max-batch = {args.max_batch} (>= 1): one is out of range"
        )
    if args.peak_rate is not None and args.peak_rate <= 0:
        raise UserError(f"--peak-rate = {args.peak_rate}: must be > 0 requests per second")
    scenario = load_scenario(args.scenario)
    peak, basis = peak_demand(scenario, args.peak_rate)
    curve, source, batch = worker_curve(args.calibration, args.capacity, args.max_batch)
    target = peak * args.headroom
    workers = workers_needed(target, curve, args.slo_ms / 1e3, batch, seed=args.seed)
    capacity = batch / curve.mean(batch)
    print(f"scenario {scenario.name}: peak {peak:.1f} req/s at full rollout ({basis})")
    print(f"one worker: ~{capacity:.0f} req/s at saturation in the simulator ({source})")
    p99 = p99_at(target, workers, curve, batch, seed=args.seed, duration_s=min(30.0, 2e5 / target))
    print(
        f"workers for p99 <= {args.slo_ms:g} ms at {args.headroom:g}x peak ({target:.1f} req/s): {workers} "
        f"(simulated p99 {p99 * 1e3:.1f} ms)"
    )
    return 0
