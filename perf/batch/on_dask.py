"""The Dask path of the batch benchmark: Parquet row-group ranges scored on a real Dask cluster.

Each worker holds one onnxruntime session (a WorkerPlugin builds it once from the model bytes); a task reads
a contiguous range of row groups, scores it chunk by chunk with the same streaming code as the single-process
path and writes ``part-NNNNN.parquet``. Parts concatenated in order give the single-process output row for
row. With ``--scheduler ADDRESS`` the data path must be readable by the workers at the same path.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
from distributed import Client, LocalCluster, as_completed, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from perf.batch.data import stream_score

PLUGIN_NAME = "purgatory-onnx-scorer"


class OnnxSessionPlugin(WorkerPlugin):
    """Builds one OnnxScorer per worker from the ONNX model bytes (``threads`` intra-op threads)."""

    name = PLUGIN_NAME

    def __init__(self, onnx_bytes: bytes, threads: int = 1):
        self.onnx_bytes = onnx_bytes
        self.threads = int(threads)
        self.scorer = None

    def setup(self, worker) -> None:
        from models.scorer import OnnxScorer  # noqa: PLC0415

        self.scorer = OnnxScorer(self.onnx_bytes, threads=self.threads)


def score_part(src: str, dst: str, features: list[str], groups: tuple[int, int], chunk_rows: int, *,
               nan_policy: str) -> dict:
    """Dask task: score row groups ``[first, stop)`` of ``src`` into ``dst`` with the worker's session."""
    scorer = get_worker().plugins[PLUGIN_NAME].scorer
    return stream_score(Path(src), Path(dst), scorer.predict_proba, features, chunk_rows=chunk_rows,
                        nan_policy=nan_policy, row_groups=groups)


class DaskBatch:
    """Context manager: a LocalCluster on 127.0.0.1 over TCP (``scheduler=None``) or a remote scheduler.

    ``n_workers`` processes with one task thread each; every worker's session uses ``ort_threads`` threads.
    """

    def __init__(self, scheduler: str | None = None, n_workers: int = 2, ort_threads: int = 1):
        self.scheduler, self.n_workers, self.ort_threads = scheduler, int(n_workers), int(ort_threads)
        self.cluster: LocalCluster | None = None
        self.client: Client | None = None

    def __enter__(self) -> DaskBatch:
        if self.scheduler is None:
            self.cluster = LocalCluster(n_workers=self.n_workers, threads_per_worker=1, processes=True,
                                        host="127.0.0.1", protocol="tcp", dashboard_address=None,
                                        silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        else:
            self.client = Client(self.scheduler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def _local_pids(self) -> list[int]:
        pids = self.client.run(os.getpid)
        mine = {p.pid for p in psutil.Process().children(recursive=True)}
        return [pid for pid in pids.values() if pid in mine]

    def score(self, src: Path, out_dir: Path, onnx_path: Path, features: list[str], *, chunk_rows: int,
              nan_policy: str = "error", groups_per_task: int = 4, progress=None) -> dict:
        """Score ``src`` into ``out_dir/part-*.parquet``; returns rows, wall_s, tasks and peak RSS (MB).

        Peak RSS is the largest sampled sum over this process and the local worker processes (None for the
        workers of a remote scheduler). Raises the task's UserError for bad input.
        """
        client = self.client
        client.register_plugin(OnnxSessionPlugin(onnx_path.read_bytes(), self.ort_threads), name=PLUGIN_NAME)
        n_groups = pq.ParquetFile(src).num_row_groups
        out_dir.mkdir(parents=True, exist_ok=True)
        for old in out_dir.glob("part-*.parquet"):
            old.unlink()
        pids = [os.getpid(), *self._local_pids()]
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                total = 0
                for pid in pids:
                    with contextlib.suppress(psutil.Error):
                        total += psutil.Process(pid).memory_info().rss
                peak[0] = max(peak[0], total)
                done.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        t0 = time.perf_counter()
        sampler.start()
        try:
            futures = [client.submit(score_part, str(src), str(out_dir / f"part-{i:05d}.parquet"), features,
                                     (first, min(first + groups_per_task, n_groups)), chunk_rows,
                                     nan_policy=nan_policy, pure=False)
                       for i, first in enumerate(range(0, n_groups, groups_per_task))]
            rows = 0
            for fut in as_completed(futures):
                stats = fut.result()
                rows += stats["rows"]
                if progress:
                    progress(stats["rows"])
        finally:
            done.set()
            sampler.join()
        wall = time.perf_counter() - t0
        local = len(pids) > 1 or self.scheduler is None
        return {"rows": rows, "wall_s": wall, "tasks": len(futures), "workers": len(client.nthreads()),
                "peak_rss_mb": peak[0] / 2**20 if local else None}


def read_parts(out_dir: Path):
    """The ``score`` column of ``out_dir/part-*.parquet`` concatenated in part order (a pyarrow array)."""
    import pyarrow as pa  # noqa: PLC0415

    parts = sorted(out_dir.glob("part-*.parquet"))
    return pa.concat_arrays([c for p in parts for c in pq.read_table(p, columns=["score"])["score"].chunks])
