"""pytest-benchmark micro-benchmarks of the scorer: 1 row, 1k rows, 100k rows, ORT beside the alternatives.

Run with ``nox -s bench`` / ``python3 tasks.py bench`` (``pytest perf --benchmark-only``, JSON saved to
results/bench/micro.json); not part of the default test run. Every group holds onnxruntime (the project's
``OnnxScorer``) and native LightGBM on the same model, rows and threads, plus lleaves / tl2cgen where
installed; the ratio of each to ORT in the same run is printed at the end and stored as ``extra_info``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import lightgbm as lgb
import numpy as np
import pytest

from models.compiled import available, make_scorer
from models.scorer import OnnxScorer
from perf.batch import catalogue as batch_models

THREADS = min(2, os.cpu_count() or 1)
SIZES = [1, 1_000, 100_000]
RUNTIMES = ["ort", "lightgbm", "lleaves", "tl2cgen"]
_medians: dict[tuple[str, int], float] = {}


@pytest.fixture(scope="module")
def model() -> batch_models.BenchModel:
    return batch_models.get("synthetic-200")


@pytest.fixture(scope="module")
def rows(model: batch_models.BenchModel) -> np.ndarray:
    return model.generate(np.random.default_rng(2024), max(SIZES))


@pytest.fixture(scope="module")
def predictors(model: batch_models.BenchModel) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    entry = model.entry
    booster = lgb.Booster(model_file=str(entry.booster_path))
    out = {"ort": OnnxScorer(entry.onnx_path, threads=THREADS).predict_proba,
           "lightgbm": lambda X: booster.predict(X, num_threads=THREADS)}
    for backend in ("lleaves", "tl2cgen"):
        if available(backend):
            out[backend] = make_scorer(entry.onnx_path, entry.booster_path, backend=backend, threads=THREADS,
                                       strict=True).predict_proba
    return out


@pytest.fixture(scope="module", autouse=True)
def ratio_report(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the module: print each runtime's median time relative to ORT's (same group, same run)."""
    yield
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is None or capture is None or not _medians:
        return
    lines = ["", f"scorer micro-benchmarks, {THREADS} threads: speed vs onnxruntime (>1 = faster)"]
    for n in SIZES:
        base = _medians.get(("ort", n))
        if base is None:
            continue
        parts = [f"{rt} {base / _medians[(rt, n)]:.2f}x"
                 for rt in RUNTIMES if (rt, n) in _medians and rt != "ort"]
        lines.append(f"  {n:>7} rows: ORT median {base * 1e6:,.1f} us; " + ", ".join(parts))
    with capture.global_and_fixture_disabled():  # fixture teardown runs under output capture
        for line in lines:
            reporter.write_line(line)


@pytest.mark.parametrize("n", SIZES, ids=lambda n: f"{n}rows")
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_scorer(benchmark, predictors: dict, rows: np.ndarray, runtime: str, n: int) -> None:
    if runtime not in predictors:
        pytest.skip(f"{runtime} not installed")
    predict = predictors[runtime]
    X = np.ascontiguousarray(rows[:n])
    benchmark.group = f"scorer {n} rows"
    benchmark.extra_info.update(runtime=runtime, rows=n, threads=THREADS)
    out = benchmark(predict, X)
    assert np.asarray(out).reshape(-1).shape == (n,)
    median = benchmark.stats.stats.median
    _medians[(runtime, n)] = median
    benchmark.extra_info["rows_per_s"] = n / median
    if ("ort", n) in _medians:
        benchmark.extra_info["speed_vs_ort"] = _medians[("ort", n)] / median
