"""models/: training determinism, float32 threshold snapping, ONNX parity, model card, registry integrity."""

from __future__ import annotations

import numpy as np
import pytest

from models.card import calibration
from models.export import check_parity, split_thresholds, threshold_probe_rows, to_onnx
from models.pipeline import build_model
from models.registry import ModelIntegrityError, Registry
from models.scorer import OnnxScorer
from models.train import TrainConfig, float32_thresholds, train_lgbm


def _data(n: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    X[:, 3] = np.round(X[:, 3])  # many exact zeros and integers: splits at LightGBM's zero band
    y = ((X[:, 0] + 0.7 * X[:, 1] - 0.5 * X[:, 3] + rng.normal(0, 0.8, n)) > 0.8).astype(np.int32)
    return X, y


FEATS = [f"f{i}" for i in range(6)]


def test_float32_thresholds_match_lightgbm_decisions_for_every_float32_input() -> None:
    rng = np.random.default_rng(3)
    t = np.r_[rng.normal(size=200) * 10, -1e-35, 1e-35, 0.0, 0.1, -0.1]
    snapped = float32_thresholds(t).astype(np.float32)
    zero = float(np.float32(1e-35))
    for ti, si in zip(t, snapped, strict=True):
        center = np.float32(ti)
        xs = [
            center,
            np.nextafter(center, np.float32(-np.inf)),
            np.nextafter(center, np.float32(np.inf)),
            np.float32(0),
            np.float32(1e-35),
            np.float32(-1e-35),
        ]
        for x in xs:
            eff = 0.0 if abs(float(x)) <= zero else float(x)
            assert (x <= si) == (eff <= ti), (ti, x)


def test_training_is_deterministic() -> None:
    X, y = _data()
    a = train_lgbm(X, y, FEATS, TrainConfig(n_trees=20), seed=5)
    b = train_lgbm(X, y, FEATS, TrainConfig(n_trees=20), seed=5)
    assert a.model_to_string() == b.model_to_string()


def test_onnx_parity_on_samples_and_at_every_split_threshold() -> None:
    X, y = _data()
    booster = train_lgbm(X, y, FEATS, TrainConfig(n_trees=40), seed=1)
    onnx_bytes = to_onnx(booster, X.shape[1], "t")
    probe = threshold_probe_rows(booster, X[:500])
    n_thresholds = sum(len(v) for v in split_thresholds(booster).values())
    assert len(probe) >= 3 * min(n_thresholds, 64)
    report = check_parity(booster, onnx_bytes, X[:2000])
    assert report.ok, report.to_json()
    assert report.max_abs_diff <= 1e-5


def test_parity_check_catches_an_unsnapped_model() -> None:
    """Without snapping, a threshold between two float32 values sends one float32 input the wrong way."""
    import lightgbm as lgb  # noqa: PLC0415

    X, y = _data(5000)
    text = train_lgbm(X, y, FEATS, TrainConfig(n_trees=5), seed=1).model_to_string()
    # put every threshold a hair below a float32 value: LightGBM (double) sends that value right, ONNX
    # (threshold rounded to float32) sends it left
    import re  # noqa: PLC0415

    def bump(m: re.Match) -> str:
        vals = [float(v) for v in m.group(1).split()]
        return "threshold=" + " ".join(repr(float(np.float32(v)) - 1e-12 * max(1.0, abs(v))) for v in vals)

    text = re.sub(r"^tree_sizes=.*\n", "", re.sub(r"^threshold=(.*)$", bump, text, flags=re.M), flags=re.M)
    broken = lgb.Booster(model_str=text)
    report = check_parity(broken, to_onnx(broken, 6, "b"), X[:200])
    assert not report.ok


def test_registry_builds_once_and_verifies_sha256(tmp_path) -> None:
    X, y = _data()
    reg = Registry(tmp_path)
    calls = []

    def make() -> tuple:
        calls.append(1)
        return X, y, None

    from models.pipeline import build_model_lazy  # noqa: PLC0415

    e1 = build_model_lazy("m", make, FEATS, TrainConfig(n_trees=10), 3, registry=reg)
    e2 = build_model_lazy("m", make, FEATS, TrainConfig(n_trees=10), 3, registry=reg)
    assert len(calls) == 1 and e1.key == e2.key
    card = e1.card
    for key in ("features", "training_data_sha256", "auroc", "auprc", "calibration", "onnx_sha256", "parity"):
        assert key in card
    assert card["features"] == FEATS and 0.5 < card["auroc"] <= 1 and card["parity"]["ok"]
    # tamper with the file: loading must refuse it
    data = bytearray(e1.onnx_path.read_bytes())
    data[-1] ^= 0xFF
    e1.onnx_path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        reg.load("m", e1.key)


def test_scorer_matches_native_and_checks_shape(tmp_path) -> None:
    X, y = _data()
    entry = build_model("s", X, y, FEATS, TrainConfig(n_trees=30), 2, registry=Registry(tmp_path))
    import lightgbm as lgb  # noqa: PLC0415

    native = lgb.Booster(model_file=str(entry.booster_path)).predict(X[:3000].astype(np.float64))
    scorer = OnnxScorer(entry.onnx_path, chunk_rows=1000)  # several chunks
    np.testing.assert_allclose(scorer.predict_proba(X[:3000]), native, atol=1e-5)
    with pytest.raises(ValueError, match="shape"):
        scorer.predict_proba(X[:, :5])


def test_calibration_table_of_a_calibrated_predictor_is_close() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(200_000)
    y = (rng.random(len(p)) < p).astype(int)
    cal = calibration(y, p)
    assert cal["ece"] < 0.01
    assert all(abs(r["mean_predicted"] - r["observed_rate"]) < 0.02 for r in cal["reliability"])
