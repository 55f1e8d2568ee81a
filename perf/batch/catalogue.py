"""The batch benchmark's model catalogue: what can be scored, and how to make its feature data.

A catalogue entry is a *builder*: a callable that returns the registered model plus a function that draws
the model's feature rows. The built-in ``synthetic-200`` is a 200-tree LightGBM binary classifier on 20
synthetic features; case studies add theirs with one line::

    register("sepsis", "sim.domains.sepsis.bench:benchmark_model", scenario="scenarios/sepsis_spot.toml")

A builder (a callable, or ``"module:function"`` resolved only when the model is asked for) returns either a
:class:`BenchModel` or a tuple ``(RegistryEntry, generate)``, where ``generate(rng, n)`` returns float32
``[n, F]`` rows in the order of ``entry.card["features"]``. A builder that accepts a ``registry`` keyword
is given the benchmark's registry; otherwise it uses its own default. With ``scenario`` (a path relative to
the repository), the catalogue loads and validates that scenario file and passes its sections (a dict) as the
builder's first argument, so a domain never loads scenario files itself.
"""

from __future__ import annotations

import importlib
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.registry import Registry, RegistryEntry
from sim.errors import UserError

#: generate(rng, n) -> float32 [n, F] feature rows
Generate = Callable[[np.random.Generator, int], np.ndarray]
Builder = Callable[..., "BenchModel | tuple[RegistryEntry, Generate]"]


@dataclass(frozen=True)
class BenchModel:
    """A registered model plus the generator of its feature rows.

    ``data_version`` is part of the cached data's identity: bump it when ``generate`` changes.
    """

    name: str
    entry: RegistryEntry
    generate: Generate
    data_version: str = "1"

    @property
    def feature_names(self) -> list[str]:
        return list(self.entry.card["features"])


ROOT = Path(__file__).resolve().parents[2]
_CATALOGUE: dict[str, Builder | str] = {}
_SCENARIOS: dict[str, str] = {}


def register(name: str, builder: Builder | str, scenario: str | None = None) -> None:
    """Add (or replace) a catalogue entry; ``builder`` is a callable or a lazy ``"module:function"``;
    ``scenario``: a scenario file (relative to the repository) whose sections the builder is given."""
    if not isinstance(builder, str) and not callable(builder):
        raise TypeError(f"builder (={builder!r}) must be callable or 'module:function'")
    _CATALOGUE[name] = builder
    if scenario is not None:
        _SCENARIOS[name] = scenario
    else:
        _SCENARIOS.pop(name, None)


def names() -> list[str]:
    """Names in the catalogue, in registration order."""
    return list(_CATALOGUE)


def _resolve(name: str, builder: Builder | str) -> Builder:
    if callable(builder):
        return builder
    module_name, _, func = builder.partition(":")
    try:
        return getattr(importlib.import_module(module_name), func)
    except (ImportError, AttributeError) as err:
        raise UserError(f"--model {name}: its builder {builder!r} is not available here ({err})") from err


def get(name: str, registry: Registry | None = None) -> BenchModel:
    """Build (or fetch from the registry) the catalogue model ``name``; raises UserError for unknown names."""
    if name not in _CATALOGUE:
        raise UserError(f"--model = {name!r}: unknown model; allowed: {', '.join(_CATALOGUE)}")
    builder = _resolve(name, _CATALOGUE[name])
    args = []
    if name in _SCENARIOS:
        from sim.scenario import load_scenario  # noqa: PLC0415 - the engine only for case-study models

        args.append(load_scenario(ROOT / _SCENARIOS[name]).to_dict())
    accepts_registry = "registry" in inspect.signature(builder).parameters
    made = builder(*args, registry=registry) if accepts_registry and registry is not None else builder(*args)
    if isinstance(made, BenchModel):
        return made
    entry, generate = made
    return BenchModel(name, entry, generate)


# ---------------------------------------------------------------------------------------------------------
# synthetic-200: the reference model of the benchmark

N_FEATURES = 20
SYNTHETIC_FEATURES = [f"f{i:02d}" for i in range(N_FEATURES)]


def synthetic_features(rng: np.random.Generator, n: int) -> np.ndarray:
    """float32 [n, 20] rows: 8 normal, 4 log-normal, 4 uniform, 2 counts, 2 binary columns."""
    X = np.empty((n, N_FEATURES), dtype=np.float32)
    X[:, 0:8] = rng.standard_normal((n, 8), dtype=np.float32)
    X[:, 8:12] = np.exp(rng.standard_normal((n, 4), dtype=np.float32) * np.float32(0.7))
    X[:, 12:16] = rng.random((n, 4), dtype=np.float32)
    X[:, 16:18] = rng.poisson(3.0, (n, 2))
    X[:, 18:20] = rng.random((n, 2), dtype=np.float32) < 0.3
    return X


def synthetic_labels(rng: np.random.Generator, X: np.ndarray) -> np.ndarray:
    """Binary labels from a non-linear logit with interactions (about 30% positive)."""
    z = (0.9 * X[:, 0] - 0.6 * X[:, 1] * X[:, 2] + np.sin(2.0 * X[:, 3]) + 0.5 * np.log(X[:, 8])
         + 1.2 * (X[:, 12] > 0.7) - 0.3 * X[:, 16] + 0.8 * X[:, 18] * X[:, 4] - 0.4)
    return (rng.random(len(X)) < 1.0 / (1.0 + np.exp(-z))).astype(np.int8)


SYNTHETIC_TRAIN = {"num_leaves": 31, "learning_rate": 0.05, "min_data_in_leaf": 20}


def synthetic(n_trees: int = 200, registry: Registry | None = None, seed: int = 20_240_601,
              train_rows: int = 40_000) -> BenchModel:
    """A LightGBM model of ``n_trees`` trees (31 leaves each) on ``train_rows`` synthetic rows.

    Named ``synthetic-<n_trees>``; the registry key covers every argument, so variants never collide.
    """
    from models.pipeline import build_model  # noqa: PLC0415  (training stack only when building)
    from models.train import TrainConfig  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    X = synthetic_features(rng, train_rows)
    y = synthetic_labels(rng, X)
    name = f"synthetic-{n_trees}"
    config = TrainConfig(n_trees=n_trees, **SYNTHETIC_TRAIN)
    entry = build_model(name, X, y, SYNTHETIC_FEATURES, config, seed, registry=registry,
                        cache_config={"generator": "synthetic_features/v1", "rows": train_rows})
    return BenchModel(name, entry, synthetic_features)


def synthetic_200(registry: Registry | None = None) -> BenchModel:
    """The benchmark's reference model: 200 trees, 31 leaves, trained on 40k synthetic rows."""
    return synthetic(200, registry=registry)


register("synthetic-200", synthetic_200)


# ---------------------------------------------------------------------------------------------------------
# runtimes: the ways the benchmark scores a catalogue model

RUNTIMES = ("ort", "ort-tuned", "lightgbm", "lleaves", "tl2cgen")
Predict = Callable[[np.ndarray], np.ndarray]


def regressor_graph(onnx_bytes: bytes) -> bytes:
    """Rewrite a binary LightGBM ``TreeEnsembleClassifier`` graph as ``TreeEnsembleRegressor`` + ``Sigmoid``.

    Same trees and leaf weights; it skips the label (arg-max) output and the two-column probability tensor,
    and outputs ``probabilities`` as float32 [N, 1] (the positive class). Raises ValueError for any graph
    that is not a single-score binary classifier with a logistic link.
    """
    import onnx  # noqa: PLC0415
    from onnx import TensorProto, helper  # noqa: PLC0415

    model = onnx.load_from_string(onnx_bytes)
    trees = [n for n in model.graph.node if n.op_type == "TreeEnsembleClassifier"]
    if len(trees) != 1:
        raise ValueError("expected exactly one TreeEnsembleClassifier node")
    attrs = {a.name: helper.get_attribute_value(a) for a in trees[0].attribute}
    if attrs.get("post_transform") != b"LOGISTIC" or set(attrs["class_ids"]) != {0} or "base_values" in attrs:
        raise ValueError("not a single-score binary classifier with a logistic link")
    keep = {k: v for k, v in attrs.items() if k.startswith("nodes_")}
    node = helper.make_node(
        "TreeEnsembleRegressor", [model.graph.input[0].name], ["raw"], domain="ai.onnx.ml", n_targets=1,
        target_ids=[0] * len(attrs["class_ids"]), target_nodeids=attrs["class_nodeids"],
        target_treeids=attrs["class_treeids"], target_weights=attrs["class_weights"], post_transform="NONE",
        aggregate_function="SUM", **keep)
    graph = helper.make_graph(
        [node, helper.make_node("Sigmoid", ["raw"], ["probabilities"])], "binary_regressor",
        [model.graph.input[0]], [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 1])])
    out = helper.make_model(graph, opset_imports=[helper.make_opsetid("ai.onnx.ml", 3),
                                                  helper.make_opsetid("", 15)])
    out.ir_version = model.ir_version
    return out.SerializeToString()


class TunedOrt:
    """onnxruntime session with explicit options; scores in ``chunk_rows`` calls.

    ``cfg`` keys: ``threads`` (intra-op), ``spinning`` (intra-op thread spin-wait), ``chunk_rows``,
    ``sequential`` (execution mode), ``optimize`` (graph optimisation ALL vs BASIC), ``graph``
    (``classifier`` as exported, or ``regressor``: see :func:`regressor_graph`).
    """

    def __init__(self, onnx_path: str | Path, cfg: dict):
        import onnxruntime as ort  # noqa: PLC0415  (keeps the catalogue import light)

        so = ort.SessionOptions()
        so.intra_op_num_threads = int(cfg["threads"])
        so.inter_op_num_threads = 1
        so.execution_mode = (ort.ExecutionMode.ORT_SEQUENTIAL if cfg.get("sequential", True)
                             else ort.ExecutionMode.ORT_PARALLEL)
        so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if cfg.get("optimize", True)
                                       else ort.GraphOptimizationLevel.ORT_ENABLE_BASIC)
        spin = "1" if cfg.get("spinning", True) else "0"
        so.add_session_config_entry("session.intra_op.allow_spinning", spin)
        model = Path(onnx_path).read_bytes()
        if cfg.get("graph", "classifier") == "regressor":
            model = regressor_graph(model)
        self.session = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        self.chunk_rows = int(cfg.get("chunk_rows", 262_144))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """float32 [N] positive-class probabilities."""
        out = np.empty(len(X), dtype=np.float32)
        for start in range(0, len(X), self.chunk_rows):
            part = X[start:start + self.chunk_rows]
            out[start:start + len(part)] = self.session.run(["probabilities"], {"input": part})[0][:, -1]
        return out


def ort_candidates(threads: int) -> list[dict]:
    """The settings tried by ``ort-tuned``: threads (all, one fewer), spin-wait, call size, graph form."""
    cands = []
    for t in sorted({threads, max(1, threads - 1)}, reverse=True):
        for spinning in (True, False):
            for chunk in (16_384, 131_072):
                for graph in ("classifier", "regressor"):
                    cands.append({"threads": t, "spinning": spinning, "chunk_rows": chunk, "graph": graph,
                                  "sequential": True, "optimize": True})
    return cands


def tune_ort(onnx_path: str | Path, X: np.ndarray, threads: int, rounds: int = 3) -> tuple[dict, list[dict]]:
    """Pick the fastest candidate on ``X`` (best of ``rounds`` interleaved passes, so load drift hits all).

    Only candidates whose scores stay within 1e-5 of the exported graph's are eligible. Returns
    ``(best_cfg, table)`` with rows/s and the parity check of every candidate.
    """
    cands = ort_candidates(threads)
    scorers = [TunedOrt(onnx_path, c) for c in cands]
    reference = scorers[0].predict_proba(X)
    for c, s in zip(cands, scorers, strict=True):  # a candidate must give the same scores (float32 rounding)
        c["max_abs_diff"] = float(np.max(np.abs(s.predict_proba(X) - reference)))
    ok = [c["max_abs_diff"] <= 1e-5 for c in cands]
    best = [0.0] * len(cands)
    for _ in range(rounds):
        for i, s in enumerate(scorers):
            t0 = time.perf_counter()
            s.predict_proba(X)
            best[i] = max(best[i], len(X) / (time.perf_counter() - t0))
    table = [{**c, "rows_per_s": r, "parity_ok": k} for c, r, k in zip(cands, best, ok, strict=True)]
    return cands[int(np.argmax([r if k else 0.0 for r, k in zip(best, ok, strict=True)]))], table


def make_predictor(runtime: str, onnx_path: str | Path, booster_path: str | Path, threads: int,
                   *, cache_dir: str | Path | None = None, tuned: dict | None = None) -> Predict:
    """A function float32 [N, F] -> float32 [N] scoring with ``runtime`` on ``threads`` threads.

    Raises UserError for an unknown runtime; models.compiled.CompiledBackendError if a compiled runtime is
    not installed.
    """
    if runtime == "ort":
        from models.scorer import OnnxScorer  # noqa: PLC0415

        return OnnxScorer(onnx_path, threads=threads).predict_proba
    if runtime == "ort-tuned":
        return TunedOrt(onnx_path, tuned or {"threads": threads}).predict_proba
    if runtime == "lightgbm":
        import lightgbm as lgb  # noqa: PLC0415

        booster = lgb.Booster(model_file=str(booster_path))
        return lambda X: booster.predict(X, num_threads=threads).astype(np.float32)
    if runtime in ("lleaves", "tl2cgen"):
        from models.compiled import LleavesScorer, Tl2cgenScorer  # noqa: PLC0415

        cls = LleavesScorer if runtime == "lleaves" else Tl2cgenScorer
        return cls(booster_path, threads=threads, cache_dir=cache_dir).predict_proba
    raise UserError(f"--runtimes: {runtime!r} is not a runtime; allowed: {', '.join(RUNTIMES)}")
register("sepsis", "sim.domains.sepsis.bench:benchmark_model", scenario="scenarios/sepsis_spot.toml")
