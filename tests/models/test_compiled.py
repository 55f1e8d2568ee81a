"""Optional compiled-tree backends: parity with onnxruntime, caching, and the fallback when not installed."""

from __future__ import annotations

import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from models.compiled import CompiledBackendError, LleavesScorer, Tl2cgenScorer, available, make_scorer
from models.export import threshold_probe_rows
from models.registry import Registry, RegistryEntry
from models.scorer import OnnxScorer
from perf.batch import catalogue as batch_models


@pytest.fixture(scope="module")
def entry(tmp_path_factory: pytest.TempPathFactory) -> RegistryEntry:
    reg = Registry(tmp_path_factory.mktemp("registry"))
    return batch_models.synthetic(25, registry=reg, train_rows=6_000).entry


@pytest.fixture(scope="module")
def rows(entry: RegistryEntry) -> np.ndarray:
    """Random rows plus rows just below / at / above every split threshold (float32)."""
    X = batch_models.synthetic_features(np.random.default_rng(11), 3_000)
    booster = lgb.Booster(model_file=str(entry.booster_path))
    return np.concatenate([X, threshold_probe_rows(booster, X, max_per_feature=32)])


@pytest.mark.parametrize("backend", ["lleaves", "tl2cgen"])
def test_compiled_backend_matches_onnxruntime(backend: str, entry: RegistryEntry, rows: np.ndarray,
                                              tmp_path: Path) -> None:
    if not available(backend):
        pytest.skip(f"{backend} is not installed (optional: pilot-purgatory[compiled])")
    scorer = make_scorer(entry.onnx_path, entry.booster_path, backend=backend, threads=2, cache_dir=tmp_path,
                         strict=True)
    assert isinstance(scorer, LleavesScorer if backend == "lleaves" else Tl2cgenScorer)
    got = scorer.predict_proba(rows)
    want = OnnxScorer(entry.onnx_path, threads=1).predict_proba(rows)
    native = lgb.Booster(model_file=str(entry.booster_path)).predict(rows)
    assert got.dtype == np.float32 and got.shape == (len(rows),)
    assert np.max(np.abs(got - want)) < 1e-5
    assert np.array_equal(got > 0.5, native > 0.5)
    assert len(list(tmp_path.glob(f"{backend}-*"))) == 1  # compiled once, cached by the booster's sha256
    again = make_scorer(entry.onnx_path, entry.booster_path, backend=backend, cache_dir=tmp_path, strict=True)
    np.testing.assert_array_equal(again.predict_proba(rows[:100]), got[:100])
    assert scorer.predict_proba(rows[:0]).shape == (0,)
    with pytest.raises(ValueError, match="must be"):
        scorer.predict_proba(rows[:, :5])


def test_default_backend_is_onnxruntime(entry: RegistryEntry) -> None:
    assert isinstance(make_scorer(entry.onnx_path), OnnxScorer)
    with pytest.raises(ValueError, match="backend"):
        make_scorer(entry.onnx_path, entry.booster_path, backend="xgboost")
    with pytest.raises(ValueError, match="booster_path"):
        make_scorer(entry.onnx_path, backend="lleaves")


@pytest.mark.parametrize("backend", ["lleaves", "tl2cgen"])
def test_missing_backend_falls_back_with_install_hint(backend: str, entry: RegistryEntry, rows: np.ndarray,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, backend, None)  # `import <backend>` now raises ImportError, as if absent
    with pytest.warns(RuntimeWarning, match=r"pip install .*falling back to onnxruntime"):
        scorer = make_scorer(entry.onnx_path, entry.booster_path, backend=backend)
    assert isinstance(scorer, OnnxScorer)
    want = OnnxScorer(entry.onnx_path).predict_proba(rows[:50])
    np.testing.assert_array_equal(scorer.predict_proba(rows[:50]), want)
    with pytest.raises(CompiledBackendError, match="not installed"):
        make_scorer(entry.onnx_path, entry.booster_path, backend=backend, strict=True)
