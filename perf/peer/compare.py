"""The serving benchmark, all in one run on one machine (127.0.0.1 only, bounded in count and time).

    .venv/bin/python -m perf.peer.compare [--step 5] [--skip-peer] [--skip-2000]

1. Builds two LightGBM models on synthetic data into ``results/registry-bench`` (cached): ``light``
   (200 trees, 31 leaves, 20 features, ~10-20 us per single row in onnxruntime) and ``heavy`` (500 trees,
   255 leaves, 40 features, ~100 us per single row).
2. For each model: ``purgatory serve`` with micro-batching on and off, and MLServer's LightGBM runtime on
   the same booster from its own venv (``perf/peer/setup_mlserver.sh``), all three up at once and measured
   in turn at each rate of one ramp (interleaved, so the shared machine's background load hits each alike);
   the result is the highest Poisson rate with p99 <= the SLO (default 100 ms) for each.
3. Calibrates the simulator's serving queue (``sim.serving.queue``) on the light model with batching on and
   compares its p99 with the measured one at three load levels below saturation.
4. 2,000 concurrent keep-alive connections for 30 s against the light model (closed loop): transport errors
   must be zero and every answer a 200 or a deliberate 503.

Writes ``results/bench/serving-compare.json`` and ``serving-compare.png``; prints ratios against our
batching-off server measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from models.pipeline import build_model
from models.registry import Registry
from models.server.runner import ServerProcess
from models.train import TrainConfig
from perf import load
from perf.peer import mlserver_peer
from sim.errors import UserError
from sim.serving.queue import GapJitter, ServiceCurve, ServingConfig, poisson_arrivals, simulate

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "results" / "bench"
PORT, PEER_PORT = 8470, 8480
MODELS = {  # name: (features, trees, leaves)
    "light": (20, 200, 31),
    "heavy": (40, 500, 255),
}
START = {"light": 1000.0, "heavy": 500.0}  # first rate of each sweep (req/s); 14 steps x1.3 reach 30x


def build_models(registry: Registry) -> dict[str, object]:
    """The benchmark models (cached in the registry by their configuration)."""
    entries = {}
    for name, (f, trees, leaves) in MODELS.items():
        rng = np.random.default_rng(2024)
        X = rng.standard_normal((40_000, f)).astype(np.float32)
        y = (
            X[:, 0] + 0.5 * X[:, 1] * X[:, 2] + np.sin(3 * X[:, 3]) + rng.standard_normal(len(X)) > 0
        ).astype(int)
        cfg = TrainConfig(n_trees=trees, num_leaves=leaves, min_data_in_leaf=5, learning_rate=0.05)
        entries[name] = build_model(
            name,
            X,
            y,
            [f"f{i}" for i in range(f)],
            cfg,
            seed=7,
            registry=registry,
            cache_config={"generator": "compare-v1", "rows": len(X)},
        )
    return entries


def our_server(registry: Registry, model: str, batching: bool, log: Path, port: int = PORT) -> ServerProcess:
    """``purgatory serve`` for one model (micro-batching on or off) in a subprocess, ready to take load."""
    args = ["--registry", str(registry.root), "--models", model, "--queue-limit", "4096"]
    return ServerProcess(args + ([] if batching else ["--no-batching"]), port=port, log=log, cwd=ROOT)


@contextlib.contextmanager
def on_and_off(registry: Registry, model: str, label: str) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Our server with batching on (``PORT``) and off (``PORT + 1``), both stopped on the way out."""
    with contextlib.ExitStack() as stack:
        on = stack.enter_context(our_server(registry, model, True, OUT / f"server-{label}-on.log", PORT))
        off_log = OUT / f"server-{label}-off.log"
        off = stack.enter_context(our_server(registry, model, False, off_log, PORT + 1))
        yield on, off


def server_stats(server: ServerProcess, model: str) -> dict:
    """The server's ``/v2/stats`` for ``model`` (batch sizes and handler times)."""
    with urllib.request.urlopen(f"{server.url}/v2/stats", timeout=5) as r:
        return json.loads(r.read())[model]


def calibrate_and_check(
    server: ServerProcess, model: str, max_rate: float, step: float, repeats: int = 3
) -> dict:
    """Fit the simulator's serving queue on the running server, then compare p99 at 3 loads below saturation.

    Capacity: a closed loop at 64 connections gives throughput X and the mean batch B (from ``/v2/stats``),
    so a batch of B takes B / X seconds; the model call's fixed cost comes from the per-batch-size timings.
    Service-time variability: the server's handler times during the low-load runs (``/v2/stats``), resampled
    as factors of their mean (a pause in the server delays everyone queued behind it).
    Jitter: latencies of an open loop at 10% of the max rate, less the service time of one request, are
    resampled and added outside the queue (client, loopback, scheduler time that uses no server capacity), by
    the idle gap before each request (:class:`sim.serving.queue.GapJitter`): on this VM a request that wakes
    an
    idle machine pays milliseconds that a request arriving while the server is busy does not.
    On a shared machine other tenants stall the server now and then; every measurement is repeated
    ``repeats`` times and the median p99 is used (the calibration run is the one with the median p99).
    """
    url = f"http://127.0.0.1:{server.port}"
    target = load.make_target(url, model, 1, seed=1)
    s0 = server_stats(server, model)
    lows = [
        asyncio.run(load.run_open(target, 0.1 * max_rate, step, seed=5 + r, raw=True)) for r in range(repeats)
    ]
    s1 = server_stats(server, model)
    handled = s1["handle_s_recent"][-max(1, min(s1["handled"] - s0["handled"], len(s1["handle_s_recent"]))):]
    low = sorted(lows, key=lambda r: r["latency_ms"]["p99"] or np.inf)[repeats // 2]
    before = server_stats(server, model)
    sat = asyncio.run(load.run_closed(target, 64, step))
    after = server_stats(server, model)
    batch_rows = (after["rows"] - before["rows"]) / max(after["batches"] - before["batches"], 1)
    sizes = np.array([int(k) for k in after["by_size"]], dtype=float)
    per_batch = np.array([v[1] / v[0] for v in after["by_size"].values()])
    model_fixed = float(np.polyfit(sizes, per_batch, 1)[1]) if len(sizes) > 2 else 0.0
    mean_curve = ServiceCurve.from_server(batch_rows, batch_rows / sat["achieved_rate"], max(model_fixed, 0))
    # service-time variability: the server's handler times at low load (no queue), as factors of their mean
    curve = ServiceCurve(mean_curve.fixed_s, mean_curve.per_item_s, "empirical", samples=tuple(handled))
    service_cv = float(np.std(handled) / np.mean(handled))
    # every low-load repeat's requests: jitter by the idle gap before each (see sim.serving.queue.GapJitter)
    jitter = GapJitter.fit(
        np.concatenate([r["raw_idle_gap_s"] for r in lows]),
        np.maximum(np.concatenate([r["raw_latency_ok_s"] for r in lows]) - curve.mean(1), 0.0),
    )
    flat = np.concatenate([np.asarray(b) for b in jitter.samples])
    for r in lows:
        r.pop("raw_latency_ok_s", None)
        r.pop("raw_idle_gap_s", None)
    cfg = ServingConfig(workers=1, max_batch=64, queue_limit=4096, timeout_s=2.0)
    levels = []
    for frac in (0.25, 0.45, 0.65):
        rate = frac * max_rate
        meas = [asyncio.run(load.run_open(target, rate, step, seed=11 + r)) for r in range(repeats)]
        p99s = [m["latency_ms"]["p99"] if m["latency_ms"]["p99"] is not None else np.inf for m in meas]
        sims = [
            simulate(
                poisson_arrivals(rate, step, np.random.default_rng([s, 1])),
                cfg,
                curve,
                np.random.default_rng([s, 2]),
                jitter,
            ).percentile(0.99)
            * 1e3
            for s in range(5)
        ]
        p99_sim, p99_meas = float(np.median(sims)), float(np.median(p99s))
        levels.append(
            {
                "fraction_of_max": frac,
                "rate": rate,
                "p99_measured_ms": p99_meas,
                "p99_measured_repeats_ms": p99s,
                "p99_sim_ms": p99_sim,
                "relative_error": (p99_sim - p99_meas) / p99_meas if p99_meas else None,
                "client_cpu_cores": [m["client_cpu_cores"] for m in meas],
                "dispatch_lag_p99_ms": [m["dispatch_lag_ms"]["p99"] for m in meas],
                "loadavg_1m": [m["loadavg_1m"] for m in meas],
            }
        )
        print(
            f"  sim vs measured at {rate:.0f} req/s: p99 {p99_sim:.2f} vs {p99_meas:.2f} ms {p99s}",
            flush=True,
        )
    return {
        "curve": {"fixed_s": curve.fixed_s, "per_item_s": curve.per_item_s, "model_fixed_s": model_fixed,
                  "service_cv": service_cv, "handler_ms_p50_p99": [float(np.quantile(handled, q) * 1e3)
                                                                   for q in (0.5, 0.99)]},
        "saturation": {"throughput": sat["achieved_rate"], "mean_batch_rows": batch_rows},
        "low_load": low,
        "low_load_p99_repeats_ms": [r["latency_ms"]["p99"] for r in lows],
        "jitter_p50_ms": float(np.median(flat) * 1e3),
        "jitter_p99_ms": float(np.quantile(flat, 0.99) * 1e3),
        "jitter_by_idle_gap": jitter.summary(),
        "levels": levels,
    }


def interleaved_sweep(targets: dict[str, load.Target], slo: float, step: float, start: float) -> dict:
    """The same rate ramp for every variant, measured in turn at each rate (same Poisson schedule, order
    rotated), so that the shared machine's background load hits every variant alike.

    Rates grow x1.3 from ``start`` for at most 14 steps; a variant drops out after 2 failing rates in a row;
    its result is the highest rate it passed (p99 <= SLO, achieved >= 95% of offered).
    """
    for t in targets.values():
        asyncio.run(load.run_closed(t, 4, 2.0))  # warm-up (lazy initialisation, caches), not recorded
    res = {v: {"slo_ms": slo, "max_rate": 0.0, "runs": [], "fails": 0} for v in targets}
    rate = start
    for k in range(14):
        alive = [v for v in targets if res[v]["fails"] < 2]
        if not alive:
            break
        for v in alive[k % len(alive) :] + alive[: k % len(alive)]:
            st = asyncio.run(load.run_open(targets[v], rate, step, seed=k, slo_ms=slo))
            st["pass"] = load.passes(st, slo)
            res[v]["runs"].append(st)
            if st["pass"]:
                res[v]["max_rate"], res[v]["fails"] = rate, 0
            else:
                res[v]["fails"] += 1
            time.sleep(1.0)  # let the server drain
        rate *= 1.3
    for v, r in res.items():
        print(f"  {v}: max rate with p99 <= {slo:g} ms = {r['max_rate']:.0f} req/s", flush=True)
    return res


def connections_2000(duration: float) -> dict:
    target = load.make_target(f"http://127.0.0.1:{PORT}", "light", 1, seed=2)
    res = asyncio.run(load.run_closed(target, 2000, duration, drain_s=10.0))
    ok = set(res["by_status"]) <= {"200", "503"}
    print(
        f"  2000 connections x {duration:g} s: {res['requests']} requests, {res['by_status']},"
        f" transport errors {res['transport_errors']}, only 200/503: {ok}",
        flush=True,
    )
    return res | {"only_200_or_503": ok}


def figure(doc: dict, path: Path) -> None:
    import matplotlib  # noqa: PLC0415 - only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    names, values = [], []
    for model, variants in doc["sweeps"].items():
        for variant, res in variants.items():
            names.append(f"{model}\n{variant}")
            values.append(res["max_rate"])
    axes[0].bar(range(len(values)), values, color=["C0", "C1", "C2"] * len(doc["sweeps"]))
    axes[0].set_xticks(range(len(values)), names, fontsize=8)
    axes[0].set(ylabel=f"highest rate with p99 <= {doc['slo_ms']:g} ms (req/s)", title="sustainable rate")
    for model, variants in doc["sweeps"].items():
        for variant, res in variants.items():
            runs = sorted(res["runs"], key=lambda r: r["target_rate"])
            axes[1].plot(
                [r["achieved_rate"] for r in runs],
                [r["latency_ms"]["p99"] or np.nan for r in runs],
                "o-",
                ms=3,
                label=f"{model} {variant}",
            )
    axes[1].axhline(doc["slo_ms"], color="grey", ls="--")
    axes[1].set(
        xlabel="achieved rate (req/s)",
        ylabel="p99 from scheduled send (ms)",
        yscale="log",
        title="open loop, Poisson arrivals",
    )
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def case_study_models() -> dict[str, str]:
    """The default scenarios' models as ``NAME@KEY`` in the main registry (trained on first use)."""
    from sim.domains.fleet.config import VAN_TYPE  # noqa: PLC0415
    from sim.domains.maintenance.model import get_classifier  # noqa: PLC0415
    from sim.domains.sepsis.model import get_model  # noqa: PLC0415
    from sim.scenario import load_scenario  # noqa: PLC0415

    sep = load_scenario(ROOT / "scenarios" / "sepsis_spot.toml").to_dict()
    fleet = load_scenario(ROOT / "scenarios" / "ford_transit_fixed.toml").to_dict()
    plant = load_scenario(ROOT / "scenarios" / "plant_rollout.toml").to_dict()
    entries = {
        "sepsis": get_model(sep),
        "fleet": get_classifier(fleet["degradation"], VAN_TYPE, 0, fleet["model"], "fleet_failure"),
        # the lighthouse model (the first plant's machine type, as plant_rollout lists it)
        "plant": get_classifier(plant["degradation"], plant["plants"]["machine_types"], 0, plant["model"],
                                "plant_failure"),
    }
    return {label: f"{e.name}@{e.key}" for label, e in entries.items()}


def case_studies(step: float, slo: float) -> int:
    """``--case-studies``: batching on vs off for each case study's own model (open-loop SLO ramps, the same
    interleaved design), written to ``results/bench/serving-case-studies.json``."""
    registry = Registry(ROOT / "results" / "registry")
    doc = {"meta": load.meta(0), "slo_ms": slo, "step_s": step, "models": {}, "sweeps": {}}
    for label, spec in case_study_models().items():
        name = spec.split("@")[0]
        print(f"{label} ({spec}): purgatory serve, batching on / off, interleaved", flush=True)
        with on_and_off(registry, spec, label):
            targets = {
                "batching on": load.make_target(f"http://127.0.0.1:{PORT}", name, 1, seed=0),
                "batching off": load.make_target(f"http://127.0.0.1:{PORT + 1}", name, 1, seed=0),
            }
            doc["models"][label] = spec
            doc["sweeps"][label] = interleaved_sweep(targets, slo, step, 1000.0)
        v = doc["sweeps"][label]
        print(f"  {label}: on / off = {v['batching on']['max_rate'] / v['batching off']['max_rate']:.2f}")
    path = OUT / "serving-case-studies.json"
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=float))
    print(f"wrote {path}")
    return 0


def recalibrate(registry: Registry, step: float, repeats: int) -> int:
    """``--calibration-only``: the calibration part of a previous full run, redone on a fresh server."""
    path = OUT / "serving-compare.json"
    try:
        doc = json.loads(path.read_text())
        max_rate = doc["sweeps"]["light"]["batching on"]["max_rate"]
    except (OSError, KeyError, ValueError) as err:
        raise UserError(f"--calibration-only needs a full run's {path} first ({err})") from None
    with our_server(registry, "light", True, OUT / "server-light-on.log") as on:
        doc["calibration"] = calibrate_and_check(on, "light", max_rate, step, repeats)
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=float))
    print(f"updated the calibration in {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--step", type=float, default=5.0, help="seconds per sweep step")
    p.add_argument("--slo-ms", type=float, default=100.0)
    p.add_argument("--skip-peer", action="store_true")
    p.add_argument("--skip-2000", action="store_true")
    p.add_argument("--models", nargs="*", default=list(MODELS))
    p.add_argument("--calibration-only", action="store_true",
                   help="redo only the simulator calibration and its 3-level check, at the light model's max"
                        " rate from the existing serving-compare.json (updated in place)")
    p.add_argument("--repeats", type=int, default=3, help="measured repeats per calibration level")
    p.add_argument("--case-studies", action="store_true",
                   help="batching on vs off for the sepsis, fleet and plant models"
                        " (results/bench/serving-case-studies.json)")
    args = p.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    if args.case_studies:
        return case_studies(args.step, args.slo_ms)
    registry = Registry(ROOT / "results" / "registry-bench")
    entries = build_models(registry)
    if args.calibration_only:
        return recalibrate(registry, args.step, args.repeats)
    doc = {"meta": load.meta(0), "slo_ms": args.slo_ms, "step_s": args.step, "sweeps": {}}
    for model in args.models:
        print(f"{model}: purgatory serve (batching on / off) and MLServer, interleaved", flush=True)
        with on_and_off(registry, model, model) as (on, off), contextlib.ExitStack() as peer:
            targets = {
                "batching on": load.make_target(on.url, model, 1, seed=0),
                "batching off": load.make_target(off.url, model, 1, seed=0),
            }
            if not args.skip_peer:
                repo = mlserver_peer.write_repository(
                    OUT / f"mlserver-{model}",
                    {model: entries[model].booster_path},
                    port=PEER_PORT,
                    grpc_port=PEER_PORT + 1,
                    metrics_port=PEER_PORT + 2,
                )
                peer.enter_context(mlserver_peer.running(repo, PEER_PORT, OUT / f"mlserver-{model}.log"))
                targets["MLServer"] = load.make_target(
                    f"http://127.0.0.1:{PEER_PORT}", model, 1, seed=0, n_features=MODELS[model][0]
                )
            doc["sweeps"][model] = interleaved_sweep(targets, args.slo_ms, args.step, START[model])
            peer.close()  # the peer and the batching-off server leave the cores to what follows
            off.stop()
            if model == "light":
                max_rate = doc["sweeps"][model]["batching on"]["max_rate"]
                doc["calibration"] = calibrate_and_check(on, model, max_rate, args.step)
                if not args.skip_2000:
                    doc["connections_2000"] = connections_2000(30.0)
    ratios = {}
    for model, v in doc["sweeps"].items():
        base = v["batching off"]["max_rate"] or float("nan")
        ratios[model] = {k: r["max_rate"] / base for k, r in v.items()}
        print(
            f"{model}: max rate / batching-off = "
            + ", ".join(f"{k} {x:.2f}" for k, x in ratios[model].items())
        )
    doc["ratios_vs_batching_off"] = ratios
    path = OUT / "serving-compare.json"
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=float))
    figure(doc, OUT / "serving-compare.png")
    print(f"wrote {path} and serving-compare.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
