"""Optional compiled-tree scorer backends for LightGBM models (off by default).

onnxruntime interprets the tree ensemble: every split is a lookup in node arrays. A tree compiler turns each
tree into native branch code with the thresholds as constants, which on a 200-tree model is roughly 2-4x
faster on the same CPU (see docs/batch-bench.md). Two compilers are supported, both optional:

- ``lleaves`` (LLVM via llvmlite; ``pip install 'lleaves>=1.2' 'llvmlite>=0.43,<0.45'``);
- ``tl2cgen`` (treelite's C code generator, compiled with the system C compiler; ``pip install tl2cgen``).

This module imports neither at import time. :func:`make_scorer` returns the ONNX scorer unless a compiled
backend is asked for; if that backend is not installed it warns with the install command and falls back to
onnxruntime (``strict=True`` raises instead). Compiled artefacts are cached next to the model (or in
``cache_dir``) and keyed by the booster file's sha256.
"""

from __future__ import annotations

import hashlib
import importlib.util
import warnings
from pathlib import Path

import numpy as np

from models.scorer import OnnxScorer

BACKENDS = ("onnx", "lleaves", "tl2cgen")
INSTALL_HINT = {
    "lleaves": "pip install 'lleaves>=1.2' 'llvmlite>=0.43,<0.45'  (or pilot-purgatory[compiled])",
    "tl2cgen": "pip install 'tl2cgen>=1.0'  (or pilot-purgatory[compiled]; needs a C compiler)",
}


class CompiledBackendError(RuntimeError):
    """The requested compiled-tree backend is not installed or failed to build."""


def available(backend: str) -> bool:
    """True if ``backend`` can be imported here (``onnx`` always can)."""
    if backend == "onnx":
        return True
    return importlib.util.find_spec(backend) is not None


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


class LleavesScorer:
    """Positive-class probabilities from a LightGBM booster compiled by lleaves.

    ``threads`` is lleaves' ``n_jobs``. The first construction compiles (seconds to a minute for hundreds
    of trees); later ones load the cached object file. Raises CompiledBackendError without lleaves.
    """

    def __init__(self, booster_path: str | Path, threads: int = 1, cache_dir: str | Path | None = None):
        try:
            import lleaves  # noqa: PLC0415  (optional dependency, imported only when asked for)
        except ImportError as err:
            raise CompiledBackendError(f"lleaves is not installed: {INSTALL_HINT['lleaves']}") from err
        booster_path = Path(booster_path)
        cache = Path(cache_dir) if cache_dir is not None else booster_path.parent
        cache.mkdir(parents=True, exist_ok=True)
        self.model = lleaves.Model(model_file=str(booster_path))
        self.model.compile(cache=str(cache / f"lleaves-{_sha(booster_path)}.o"))
        self.n_features = int(self.model.num_feature())
        self.threads = int(threads)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """float32 [N] probabilities for float32 [N, n_features] rows."""
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X shape (={X.shape}) must be (N, {self.n_features})")
        if len(X) == 0:
            return np.empty(0, dtype=np.float32)
        return self.model.predict(X, n_jobs=self.threads).astype(np.float32)


class Tl2cgenScorer:
    """Positive-class probabilities from a LightGBM booster compiled to C by tl2cgen (gcc or clang).

    Raises CompiledBackendError without tl2cgen/treelite or a working C compiler.
    """

    def __init__(self, booster_path: str | Path, threads: int = 1, cache_dir: str | Path | None = None,
                 toolchain: str = "gcc"):
        try:
            import tl2cgen  # noqa: PLC0415
            import treelite  # noqa: PLC0415
        except ImportError as err:
            raise CompiledBackendError(f"tl2cgen is not installed: {INSTALL_HINT['tl2cgen']}") from err
        booster_path = Path(booster_path)
        cache = Path(cache_dir) if cache_dir is not None else booster_path.parent
        cache.mkdir(parents=True, exist_ok=True)
        lib = cache / f"tl2cgen-{_sha(booster_path)}.so"
        if not lib.exists():
            model = treelite.frontend.load_lightgbm_model(str(booster_path))
            tmp = lib.with_name(f".{lib.name}.tmp.so")
            try:
                tl2cgen.export_lib(model, toolchain=toolchain, libpath=str(tmp), params={"parallel_comp": 8})
            except Exception as err:  # compiler missing or failing: the message says which
                raise CompiledBackendError(f"tl2cgen could not build {lib}: {err}") from err
            tmp.replace(lib)
        self._tl2cgen = tl2cgen
        self.threads, self.note = int(threads), None
        try:
            self.predictor = tl2cgen.Predictor(str(lib), nthread=self.threads)
        except tl2cgen.TL2cgenError as err:  # its OpenMP cap can be below the core count on a loaded host
            self.predictor = tl2cgen.Predictor(str(lib))
            self.threads = -1
            self.note = f"tl2cgen refused nthread={threads}; ran at its OpenMP default ({err})"
        self.n_features = int(self.predictor.num_feature)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """float32 [N] probabilities for float32 [N, n_features] rows."""
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X shape (={X.shape}) must be (N, {self.n_features})")
        if len(X) == 0:
            return np.empty(0, dtype=np.float32)
        out = self.predictor.predict(self._tl2cgen.DMatrix(np.ascontiguousarray(X, dtype=np.float32)))
        return np.asarray(out, dtype=np.float32).reshape(len(X))


def make_scorer(onnx_path: str | Path, booster_path: str | Path | None = None, *, backend: str = "onnx",
                threads: int = 1, cache_dir: str | Path | None = None, strict: bool = False,
                ) -> OnnxScorer | LleavesScorer | Tl2cgenScorer:
    """A scorer with ``.predict_proba(X float32 [N, F]) -> float32 [N]`` for the chosen backend.

    ``backend="onnx"`` (default) is the onnxruntime scorer. A compiled backend needs ``booster_path``
    (LightGBM text model). If it is unavailable: ``strict=True`` raises CompiledBackendError, otherwise
    a RuntimeWarning names the install command and the ONNX scorer is returned. Raises ValueError for an
    unknown backend.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend (={backend!r}) must be one of {BACKENDS}")
    if backend != "onnx":
        if booster_path is None:
            raise ValueError(f"backend {backend!r} needs booster_path (a LightGBM text model)")
        cls = LleavesScorer if backend == "lleaves" else Tl2cgenScorer
        try:
            return cls(booster_path, threads=threads, cache_dir=cache_dir)
        except CompiledBackendError as err:
            if strict:
                raise
            warnings.warn(f"{err}; falling back to onnxruntime", RuntimeWarning, stacklevel=2)
    return OnnxScorer(onnx_path, threads=threads)
