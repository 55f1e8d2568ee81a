"""Feature data for the batch benchmark: chunked Parquet generation, reuse checks and input validation.

Generated files carry their identity (model, model key, features, records, seed, generator version, row group
size) in the Parquet key-value metadata; a file is reused only when that identity and the row count match,
otherwise it is regenerated. Row group ``g`` is drawn from ``SeedSequence(seed, spawn_key=(g,))``, so the
data depends only on the seed and the row-group size, never on the machine or the run. Files are written to a
temporary name and renamed, so an interrupted generation never leaves a file that looks valid.

Input policy for scoring (any Parquet, generated or a user's ``--input``):
- every model feature must be a column (extra columns are ignored, order does not matter);
- feature columns must be float32 (float64 or integers are refused rather than silently cast: the model's
  split thresholds are float32 and a cast changes which side of a split a value falls on);
- NaN or null in a feature is refused by default (``nan_policy="error"``); with ``nan_policy="null"`` those
  rows get a null score and are counted. LightGBM and ONNX treat a missing value differently for models
  trained without missing values, so scoring such a row would be a silent wrong score.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sim.errors import UserError

META_KEY = b"purgatory.bench"
DATA_FORMAT = 1
ROW_GROUP_ROWS = 524_288
NAN_POLICIES = ("error", "null")


def parse_count(text: str) -> int:
    """'1k' -> 1000, '10M' -> 10_000_000, '2500' -> 2500; raises UserError."""
    t = text.strip()
    mult = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}.get(t[-1:].lower(), 1)
    digits = t[:-1] if mult > 1 else t
    try:
        value = float(digits) * mult
    except ValueError:
        raise UserError(f"--records: {text!r} is not a count; use e.g. 1k, 10k, 1M, 100M") from None
    if value < 1 or value != int(value):
        raise UserError(f"--records: {text!r} must be a whole number of records >= 1")
    return int(value)


def label(n: int) -> str:
    """1000 -> '1k', 100_000_000 -> '100M' (inverse of parse_count for round numbers)."""
    for div, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if n % div == 0:
            return f"{n // div}{suffix}"
    return str(n)


def identity(model_name: str, model_key: str, features: list[str], records: int, *, seed: int,
             data_version: str) -> dict:
    """Everything that determines a generated data file's content."""
    return {"format": DATA_FORMAT, "model": model_name, "model_key": model_key, "features": list(features),
            "records": int(records), "seed": int(seed), "data_version": str(data_version),
            "row_group_rows": ROW_GROUP_ROWS}


def read_identity(path: Path) -> dict | None:
    """The identity stored in a generated file, or None if the file is missing, unreadable or foreign."""
    try:
        meta = pq.read_metadata(path)
    except (OSError, pa.ArrowInvalid):
        return None
    raw = (meta.metadata or {}).get(META_KEY)
    if raw is None:
        return None
    ident = json.loads(raw)
    return ident if meta.num_rows == ident.get("records") else None


def ensure_data(path: Path, ident: dict, generate: Callable[[np.random.Generator, int], np.ndarray],
                progress: Callable[[int], None] | None = None) -> bool:
    """Make sure ``path`` holds the data described by ``ident``; returns True if it was (re)generated.

    Memory is bounded by one row group (``ROW_GROUP_ROWS`` x features x 4 bytes, ~42 MB for 20 features).
    """
    if read_identity(path) == ident:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    features = ident["features"]
    schema = pa.schema([pa.field(f, pa.float32(), nullable=False) for f in features],
                       metadata={META_KEY: json.dumps(ident, sort_keys=True).encode()})
    root = np.random.SeedSequence(ident["seed"])
    try:
        with pq.ParquetWriter(tmp, schema, compression="snappy", use_dictionary=False) as writer:
            for g, start in enumerate(range(0, ident["records"], ROW_GROUP_ROWS)):
                n = min(ROW_GROUP_ROWS, ident["records"] - start)
                seq = np.random.SeedSequence(root.entropy, spawn_key=(g,))
                X = generate(np.random.Generator(np.random.PCG64(seq)), n)
                if X.shape != (n, len(features)) or X.dtype != np.float32:
                    want = (n, len(features))
                    raise ValueError(f"generate gave {X.dtype} {X.shape}; expected float32 {want}")
                cols = [pa.array(X[:, j]) for j in range(len(features))]
                writer.write_table(pa.Table.from_arrays(cols, schema=schema), row_group_size=ROW_GROUP_ROWS)
                if progress:
                    progress(n)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def check_schema(path: Path, features: list[str]) -> pq.ParquetFile:
    """Open ``path`` for streaming (``pre_buffer=False``) after checking columns and dtypes.

    Raises UserError naming the file and the missing or mistyped columns.
    """
    try:
        pf = pq.ParquetFile(path, pre_buffer=False)
    except (OSError, pa.ArrowInvalid) as err:
        raise UserError(f"{path}: not a readable Parquet file ({err})") from None
    schema = pf.schema_arrow
    missing = [f for f in features if f not in schema.names]
    if missing:
        raise UserError(f"{path}: missing feature column(s) {missing}; the model needs {features}")
    wrong = {f: str(schema.field(f).type) for f in features if schema.field(f).type != pa.float32()}
    if wrong:
        raise UserError(f"{path}: feature column(s) {wrong} must be float32 (cast them explicitly: a silent "
                        "cast can move values across the model's float32 split thresholds)")
    return pf


def iter_chunks(pf: pq.ParquetFile, features: list[str], buf: np.ndarray, *, first_row_group: int = 0,
                stop_row_group: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(n, X)`` with X a row-major float32 view of ``buf`` holding the next ``n`` rows.

    Nulls come through as NaN. ``buf`` is float32 [chunk_rows, len(features)] and is reused, so each
    view is valid only until the next iteration.
    """
    groups = range(first_row_group, pf.num_row_groups if stop_row_group is None else stop_row_group)
    batches = pf.iter_batches(batch_size=len(buf), row_groups=groups, columns=features, use_threads=False)
    for batch in batches:
        n = batch.num_rows
        for j in range(len(features)):
            col = batch.column(j)
            buf[:n, j] = col.to_numpy(zero_copy_only=False) if col.null_count else col.to_numpy()
        yield n, buf[:n]


def nan_rows(X: np.ndarray) -> np.ndarray:
    """Boolean [N]: rows with a NaN in any feature."""
    return np.isnan(X).any(axis=1)


def describe_nan(path: Path, X: np.ndarray, bad: np.ndarray, offset: int, features: list[str]) -> str:
    """One-line UserError text naming the first bad row (0-based, whole file) and its NaN columns."""
    i = int(np.flatnonzero(bad)[0])
    cols = [features[j] for j in np.flatnonzero(np.isnan(X[i]))]
    return (f"{path}: row {offset + i} has NaN/null in {cols} ({int(bad.sum())} such rows in this chunk); "
            "the model was not trained on missing values. Use --nan-policy null to give such rows a null "
            "score, or impute them upstream")


SCORE_SCHEMA = pa.schema([pa.field("score", pa.float32(), nullable=True)])


def stream_score(src: Path, dst: Path, predict: Callable[[np.ndarray], np.ndarray], features: list[str], *,
                 chunk_rows: int, nan_policy: str = "error", row_groups: tuple[int, int | None] = (0, None),
                 progress: Callable[[int], None] | None = None) -> dict:
    """Read ``src`` chunk by chunk, score each chunk, write the ``score`` column to ``dst`` (same row order).

    Returns seconds spent reading (decode + layout + NaN check), scoring and writing, the wall time, rows
    and NaN rows. ``dst`` appears only when every row is scored (written to a temporary name, renamed).
    Raises UserError for a missing column, a non-float32 feature, or a NaN row under ``nan_policy="error"``.
    """
    if nan_policy not in NAN_POLICIES:
        raise UserError(f"--nan-policy = {nan_policy!r}: allowed: {', '.join(NAN_POLICIES)}")
    t_start = time.perf_counter()
    pf = check_schema(src, features)
    buf = np.empty((chunk_rows, len(features)), dtype=np.float32)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    read_s = score_s = write_s = 0.0
    rows = n_nan = 0
    chunks = iter_chunks(pf, features, buf, first_row_group=row_groups[0], stop_row_group=row_groups[1])
    try:
        with pq.ParquetWriter(tmp, SCORE_SCHEMA, compression="snappy") as writer:
            while True:
                t0 = time.perf_counter()
                item = next(chunks, None)
                if item is None:
                    read_s += time.perf_counter() - t0
                    break
                n, X = item
                bad = nan_rows(X)
                any_bad = bool(bad.any())
                if any_bad:
                    if nan_policy == "error":
                        raise UserError(describe_nan(src, X, bad, rows, features))
                    X[bad] = 0.0  # scored but masked to null below
                    n_nan += int(bad.sum())
                t1 = time.perf_counter()
                p = predict(X)
                t2 = time.perf_counter()
                col = pa.array(p, type=pa.float32(), mask=bad if any_bad else None)
                writer.write_batch(pa.RecordBatch.from_arrays([col], schema=SCORE_SCHEMA))
                t3 = time.perf_counter()
                read_s, score_s, write_s = read_s + t1 - t0, score_s + t2 - t1, write_s + t3 - t2
                rows += n
                if progress:
                    progress(n)
        t_close = time.perf_counter()
        os.replace(tmp, dst)
        write_s += time.perf_counter() - t_close
    finally:
        tmp.unlink(missing_ok=True)
    return {"rows": rows, "nan_rows": n_nan, "read_s": read_s, "score_s": score_s, "write_s": write_s,
            "wall_s": time.perf_counter() - t_start}


def compare_scores(a: Path, b: Path) -> float:
    """Largest |a - b| between two score outputs (a file, or a folder of ``part-*.parquet`` in order).

    Nulls must sit at the same rows (else inf). Streams both, so memory stays bounded at any size.
    """
    def batches(p: Path) -> Iterator[np.ndarray]:
        files = sorted(p.glob("part-*.parquet")) if p.is_dir() else [p]
        for f in files:
            for rb in pq.ParquetFile(f, pre_buffer=False).iter_batches(batch_size=1 << 20, columns=["score"]):
                yield rb.column(0).to_numpy(zero_copy_only=False)

    worst, left = 0.0, np.empty(0, dtype=np.float32)
    it_b = batches(b)
    for xa in batches(a):
        got = [left]
        have = len(left)
        while have < len(xa):
            nxt = next(it_b, None)
            if nxt is None:
                return float("inf")
            got.append(nxt)
            have += len(nxt)
        xb = np.concatenate(got)
        xb, left = xb[: len(xa)], xb[len(xa):]
        if not np.array_equal(np.isnan(xa), np.isnan(xb)):
            return float("inf")
        if len(xa):
            worst = max(worst, float(np.nanmax(np.abs(xa.astype(np.float64) - xb), initial=0.0)))
    if len(left) or next(it_b, None) is not None:
        return float("inf")
    return worst
