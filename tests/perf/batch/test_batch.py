"""Batch scoring benchmark: data reuse, streaming == in-memory, bad input, Dask parity, the CLI's outputs."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from models.export import threshold_probe_rows
from models.registry import Registry
from models.scorer import OnnxScorer
from perf.batch import catalogue as batch_models
from perf.batch import data
from perf.batch.on_dask import DaskBatch, read_parts
from sim.cli import bench_batch as batch
from sim.errors import UserError


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[batch_models.BenchModel]:
    """A 40-tree variant of the benchmark model (the 200-tree one trains too slowly for a unit test)."""
    batch_models.register("synthetic-40", functools.partial(batch_models.synthetic, 40, train_rows=8_000))
    yield batch_models.get("synthetic-40", Registry(tmp_path_factory.mktemp("registry")))
    batch_models._CATALOGUE.pop("synthetic-40")


@pytest.fixture(scope="module")
def rows(model: batch_models.BenchModel) -> np.ndarray:
    return model.generate(np.random.default_rng(3), 5_000)


def write(path: Path, X: np.ndarray, names: list[str], row_group_size: int = 1_000) -> Path:
    pq.write_table(pa.table({n: X[:, j] for j, n in enumerate(names)}), path, row_group_size=row_group_size)
    return path


def scores(path: Path) -> np.ndarray:
    return pq.read_table(path)["score"].to_numpy(zero_copy_only=False)


def test_parse_count_and_label_round_trip() -> None:
    for text, n in (("1k", 1_000), ("10M", 10_000_000), ("100M", 100_000_000), ("2500", 2_500)):
        assert data.parse_count(text) == n
        assert data.parse_count(data.label(n)) == n
    for bad in ("ten", "0", "1.5k5", "-1k"):
        with pytest.raises(UserError, match="--records"):
            data.parse_count(bad)


def test_generated_data_is_deterministic_reused_and_regenerated(tmp_path: Path,
                                                                model: batch_models.BenchModel) -> None:
    ident = data.identity(model.name, model.entry.key, model.feature_names, 3_000, seed=5, data_version="1")
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    assert data.ensure_data(a, ident, model.generate) is True
    assert data.ensure_data(b, ident, model.generate) is True
    assert pq.read_table(a).equals(pq.read_table(b))  # same identity -> same bytes of data
    assert data.ensure_data(a, ident, model.generate) is False  # valid: reused
    other = {**ident, "seed": 6}
    assert data.ensure_data(a, other, model.generate) is True  # identity changed: regenerated
    assert not pq.read_table(a).equals(pq.read_table(b))
    a.write_bytes(a.read_bytes()[:500])  # truncated file: not valid any more
    assert data.read_identity(a) is None
    assert data.ensure_data(a, other, model.generate) is True
    assert pq.read_metadata(a).num_rows == 3_000
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize("chunk_rows", [700, 4_096, 100_000])
def test_stream_equals_in_memory_scorer(tmp_path: Path, model: batch_models.BenchModel, rows: np.ndarray,
                                        chunk_rows: int) -> None:
    names = model.feature_names
    src = write(tmp_path / "in.parquet", rows[:, ::-1], names[::-1])  # column order must not matter
    pa_extra = pq.read_table(src).append_column("patient_id", pa.array(np.arange(len(rows))))
    pq.write_table(pa_extra, src, row_group_size=1_000)  # extra columns are ignored
    scorer = OnnxScorer(model.entry.onnx_path, threads=1)
    out = tmp_path / "out.parquet"
    stats = data.stream_score(src, out, scorer.predict_proba, names, chunk_rows=chunk_rows)
    assert stats["rows"] == len(rows) and stats["nan_rows"] == 0
    assert min(stats["read_s"], stats["score_s"], stats["write_s"]) > 0
    np.testing.assert_array_equal(scores(tmp_path / "out.parquet"), scorer.predict_proba(rows))


def test_missing_column_is_refused(tmp_path: Path, model: batch_models.BenchModel, rows: np.ndarray) -> None:
    names = model.feature_names
    src = write(tmp_path / "in.parquet", rows[:, 1:], names[1:])
    with pytest.raises(UserError, match=r"missing feature column\(s\) \['f00'\]"):
        data.stream_score(src, tmp_path / "out.parquet", lambda X: X[:, 0], names, chunk_rows=1_000)
    assert not (tmp_path / "out.parquet").exists()


def test_wrong_dtype_is_refused_not_cast(tmp_path: Path, model: batch_models.BenchModel,
                                         rows: np.ndarray) -> None:
    names = model.feature_names
    cols = {n: rows[:, j] for j, n in enumerate(names)}
    table = pa.table(cols | {"f03": cols["f03"].astype(np.float64)})
    pq.write_table(table, tmp_path / "in.parquet")
    with pytest.raises(UserError, match=r"'f03': 'double'.*must be float32"):
        data.check_schema(tmp_path / "in.parquet", names)


def test_nan_rows_error_by_default_and_null_under_policy(tmp_path: Path, model: batch_models.BenchModel,
                                                        rows: np.ndarray) -> None:
    names = model.feature_names
    X = rows.copy()
    X[1_234, 5] = np.nan
    X[4_000, 0] = np.nan
    src = write(tmp_path / "in.parquet", X, names)
    tbl = pq.read_table(src)  # and a real Parquet null (not NaN) in another row
    f7 = tbl["f07"].to_numpy().copy()
    tbl = tbl.set_column(7, "f07", pa.array(f7, mask=np.arange(len(f7)) == 2_500))
    pq.write_table(tbl, src, row_group_size=1_000)
    scorer = OnnxScorer(model.entry.onnx_path, threads=1)
    out = tmp_path / "out.parquet"
    with pytest.raises(UserError, match=r"row 1234 has NaN/null in \['f05'\]"):
        data.stream_score(src, out, scorer.predict_proba, names, chunk_rows=1_000)
    assert not out.exists()
    stats = data.stream_score(src, out, scorer.predict_proba, names, chunk_rows=1_000, nan_policy="null")
    got, want = scores(out), scorer.predict_proba(rows)
    bad = np.zeros(len(rows), bool)
    bad[[1_234, 2_500, 4_000]] = True
    assert stats["nan_rows"] == 3
    assert np.isnan(got[bad]).all()
    np.testing.assert_array_equal(got[~bad], want[~bad])
    with pytest.raises(UserError, match="--nan-policy"):
        data.stream_score(src, out, scorer.predict_proba, names, chunk_rows=1_000, nan_policy="zero")


def test_dask_local_cluster_gives_identical_predictions(tmp_path: Path, model: batch_models.BenchModel,
                                                        rows: np.ndarray) -> None:
    names = model.feature_names
    src = write(tmp_path / "in.parquet", rows, names, row_group_size=500)  # 10 row groups -> 5 tasks
    single, two = tmp_path / "single.parquet", tmp_path / "two_threads.parquet"
    data.stream_score(src, single, OnnxScorer(model.entry.onnx_path, threads=1).predict_proba, names,
                      chunk_rows=300)
    data.stream_score(src, two, OnnxScorer(model.entry.onnx_path, threads=2).predict_proba, names,
                      chunk_rows=300)
    with DaskBatch(None, n_workers=2, ort_threads=1) as db:
        assert all(addr.startswith("tcp://127.0.0.1:") for addr in db.client.nthreads())
        assert len(db.client.nthreads()) == 2
        res = db.score(src, tmp_path / "dask", model.entry.onnx_path, names, chunk_rows=300,
                       groups_per_task=2)
    assert res["rows"] == len(rows) and res["tasks"] == 5
    np.testing.assert_array_equal(read_parts(tmp_path / "dask").to_numpy(), scores(single))
    assert data.compare_scores(single, tmp_path / "dask") == 0.0
    # Same session settings -> bit-identical. A different intra-op thread count may change ORT's order of
    # summing trees on small calls: float32 rounding only (documented in docs/batch-bench.md).
    assert data.compare_scores(two, tmp_path / "dask") < 1e-6


def test_compare_scores_detects_differences(tmp_path: Path) -> None:
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(pa.table({"score": np.linspace(0, 1, 3_000, dtype=np.float32)}), a, row_group_size=700)
    pq.write_table(pa.table({"score": np.linspace(0, 1, 3_000, dtype=np.float32)}), b, row_group_size=1_100)
    assert data.compare_scores(a, b) == 0.0
    v = np.linspace(0, 1, 3_000, dtype=np.float32)
    v[2_999] += 0.25
    pq.write_table(pa.table({"score": v}), b)
    assert data.compare_scores(a, b) == pytest.approx(0.25)
    pq.write_table(pa.table({"score": v[:-1]}), b)
    assert data.compare_scores(a, b) == float("inf")  # lengths differ


def test_cli_writes_batch_json_and_figure(tmp_path: Path, model: batch_models.BenchModel) -> None:
    out = tmp_path / "bench"
    rc = batch.main(["--model", "synthetic-40", "--records", "2k", "--runtimes", "ort,lightgbm",
                     "--out", str(out), "--memory-max", "2k", "--memory-min-s", "0.05",
                     "--paired-rounds", "2", "--threads", "1", "--no-progress",
                     "--registry", str(model.entry.path.parent.parent)])
    assert rc == 0
    doc = json.loads((out / "batch.json").read_text())
    assert (out / "batch.png").stat().st_size > 10_000
    got = {(r["records"], r["runtime"], r["mode"]) for r in doc["rows"]}
    assert got == {(2_000, "ort", "stream"), (2_000, "ort", "memory"), (2_000, "lightgbm", "stream"),
                   (2_000, "lightgbm", "memory")}
    for r in doc["rows"]:
        assert r["rows_per_s"] > 0 and r["wall_s"] > 0
        assert 50 < r["peak_rss_mb"] < 2_048
        if r["mode"] == "stream":
            assert r["max_abs_diff_vs_first"] < 1e-5  # native LightGBM and ORT agree on the same rows
            assert r["read_s"] + r["score_s"] + r["write_s"] <= r["wall_s"]
    for key in ("cpu", "logical_cores", "versions", "git_sha"):
        assert key in doc["machine"]
    assert doc["machine"]["versions"]["onnxruntime"]
    assert len(list((out / "data").glob("*.parquet"))) == 1
    paired = doc["setup"]["paired"]  # both runtimes alternating in one process on the same rows
    assert paired["records"] == 2_000 and set(paired["median_rows_per_s"]) == {"ort", "lightgbm"}
    assert all(len(v) == 2 for v in paired["rows_per_s"].values())
    assert doc["ratios"]["paired_2k"]["ort_over_lightgbm"] > 0
    assert doc["complete"] is True


def test_cli_bad_flags_and_bad_input(tmp_path: Path, model: batch_models.BenchModel,
                                     rows: np.ndarray) -> None:
    reg = ["--registry", str(model.entry.path.parent.parent), "--no-progress", "--out", str(tmp_path)]
    with pytest.raises(UserError, match="--runtimes"):
        batch.main(["--runtimes", "ort,xgboost", *reg])
    with pytest.raises(UserError, match="--records"):
        batch.main(["--records", "lots", *reg])
    with pytest.raises(UserError, match="unknown model"):
        batch.main(["--model", "nope", *reg])
    src = write(tmp_path / "user.parquet", rows[:, :-1], model.feature_names[:-1])
    with pytest.raises(UserError, match=r"missing feature column\(s\) \['f19'\]"):
        batch.main(["--model", "synthetic-40", "--input", str(src), "--runtimes", "ort", *reg])


def test_register_hook(tmp_path: Path, model: batch_models.BenchModel) -> None:
    batch_models.register("tuple-model", lambda: (model.entry, batch_models.synthetic_features))
    batch_models.register("lazy-missing", "sim.domains.no_such_domain:benchmark_model")
    try:
        got = batch_models.get("tuple-model")
        assert got.name == "tuple-model" and got.feature_names == model.feature_names
        with pytest.raises(UserError, match="lazy-missing"):
            batch_models.get("lazy-missing")
        with pytest.raises(TypeError):
            batch_models.register("bad", 42)
    finally:
        batch_models._CATALOGUE.pop("tuple-model")
        batch_models._CATALOGUE.pop("lazy-missing")


def test_tuned_ort_regressor_graph_matches_exported_classifier(model: batch_models.BenchModel,
                                                               rows: np.ndarray) -> None:
    booster = lgb.Booster(model_file=str(model.entry.booster_path))
    X = np.concatenate([rows, threshold_probe_rows(booster, rows)])
    want = OnnxScorer(model.entry.onnx_path, threads=1).predict_proba(X)
    cfg = {"threads": 1, "graph": "regressor", "chunk_rows": 999}
    tuned = batch_models.TunedOrt(model.entry.onnx_path, cfg)
    got = tuned.predict_proba(X)
    assert np.max(np.abs(got - want)) < 1e-6
    assert np.array_equal(got > 0.5, want > 0.5)
    best, table = batch_models.tune_ort(model.entry.onnx_path, rows[:2_000], threads=2, rounds=1)
    assert len(table) == len(batch_models.ort_candidates(2)) == 16
    assert all(r["parity_ok"] and r["rows_per_s"] > 0 for r in table)
    assert best["threads"] in (1, 2) and best["graph"] in ("classifier", "regressor")
