"""Batch two-sample drift statistics on feature windows and model outputs, vectorised over many columns.

For every column (a feature, or the model score) the current window is compared with a fitted reference by

- ``psi``: population stability index on ``bins`` quantile bins of the reference, proportions floored at
  ``1e-4`` (the convention of :mod:`sim.monitor`), natural log;
- ``js``: Jensen-Shannon *distance* (square root of the base-2 divergence, in [0, 1], as
  ``scipy.spatial.distance.jensenshannon(p, q, base=2)``) on the same quantile bins;
- ``wasserstein``: the exact 1-Wasserstein distance between the two empirical distributions, divided by the
  reference's standard deviation (so it is in units of reference standard deviations);
- ``ks``: the exact two-sample Kolmogorov-Smirnov statistic (ties handled), with its asymptotic p-value
  (Kolmogorov distribution with Stephens' small-sample correction).

:class:`Reference` sorts the reference once (``fit``); ``compare`` then sorts only the window and obtains
every statistic from the two sorted samples (one ``searchsorted`` per column for KS, arithmetic quantile
grids for Wasserstein, 9 look-ups per column for the bins). Nominal-level thresholds for PSI, JS,
Wasserstein (and KS, beside its p-value) come from random splits of the reference (:func:`calibrate`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy.special import kolmogorov

from sim.errors import UserError

STATS = ("psi", "js", "wasserstein", "ks")
PSI_EPS = 1e-4


def _as_matrix(X: np.ndarray, what: str) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] < 2:
        raise UserError(f"{what} (shape={X.shape}) must be a [rows, columns] array with at least 2 rows")
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float64)
    if np.isnan(X).any():
        raise UserError(f"{what} contains NaN: impute or drop missing values before comparing distributions")
    return X


def sorted_columns(X: np.ndarray, threads: int = 1) -> np.ndarray:
    """Columns of ``X`` [rows, F] as a C-contiguous [F, rows] array, each row sorted ascending (a copy)."""
    if threads > 1 and X.shape[1] > 1:
        out = np.empty((X.shape[1], X.shape[0]), dtype=X.dtype)

        def one(k: int) -> None:
            out[k] = X[:, k]
            out[k].sort()

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(X.shape[1])))
        return out
    T = np.ascontiguousarray(X.T)
    if np.shares_memory(T, X):
        T = T.copy()
    T.sort(axis=1)
    return T


@lru_cache(maxsize=4)
def _quantile_grid(n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs and weights on which both empirical quantile functions are constant (n != m)."""
    u = np.union1d(np.arange(1, n + 1, dtype=np.int64) * m, np.arange(1, m + 1, dtype=np.int64) * n)
    prev = np.r_[np.int64(0), u[:-1]]
    mid2 = prev + u                        # 2 * midpoint, in units of 1 / (n m)
    ia = np.minimum(mid2 // (2 * m), n - 1)
    ib = np.minimum(mid2 // (2 * n), m - 1)
    return ia, ib, (u - prev) / float(n * m)


def _row_std(T: np.ndarray) -> np.ndarray:
    """Population standard deviation of each row, in float64 one row at a time (no [F, n] temporaries)."""
    out = np.empty(T.shape[0])
    for k in range(T.shape[0]):
        v = T[k].astype(np.float64)
        v -= v.mean()
        out[k] = np.sqrt(np.dot(v, v) / v.size)
    return out


def _bin_edges(a_sorted: np.ndarray, bins: int) -> np.ndarray:
    """[K, bins-1] quantile edges of each sorted row (order statistic at ceil(k n / bins))."""
    n = a_sorted.shape[1]
    pos = np.maximum(-(-np.arange(1, bins) * n // bins) - 1, 0)
    return a_sorted[:, pos]


def _ks_pvalue(d: np.ndarray, n: int, m: int) -> np.ndarray:
    en = np.sqrt(n * m / (n + m))
    return np.clip(kolmogorov((en + 0.12 + 0.11 / en) * d), 0.0, 1.0)


Grid = tuple[np.ndarray, np.ndarray, np.ndarray]


def _ks_at(a: np.ndarray, b: np.ndarray, idx: np.ndarray | None) -> int:
    """n m times the largest |F_a - F_b| seen from the b points ``b[idx]`` (all of b if None).

    ``F_a(b_j) = r_j / n`` and ``F_a(b_j-) = l_j / n``; at the last point of a tie group of b, F_b - F_a is
    largest right at b_j, and F_a - F_b is largest just before the first point of a group. ``idx`` must
    cover whole tie groups.
    """
    n, m = a.shape[0], b.shape[0]
    bs = b if idx is None else b[idx]
    j = np.arange(m, dtype=np.int64) if idx is None else idx.astype(np.int64)
    if bs.size == 0:
        return 0
    r = np.searchsorted(a, bs, "right")
    hit = a[np.maximum(r - 1, 0)] == bs
    hit &= r > 0
    if hit.any():
        l_ = r.copy()
        l_[hit] = np.searchsorted(a, bs[hit], "left")
    else:
        l_ = r
    new = np.not_equal(bs[1:], bs[:-1])
    if new.all():           # no ties: every point ends and starts its own group
        return int(max(((j + 1) * n - r * m).max(), (l_ * m - j * n).max()))
    first, last = np.r_[True, new], np.r_[new, True]
    return int(max(((j[last] + 1) * n - r[last] * m).max(), (l_[first] * m - j[first] * n).max()))


def _ks_statistic(a: np.ndarray, b: np.ndarray, grid_points: int = 16384) -> float:
    """Exact two-sample KS statistic of sorted samples ``a`` and ``b`` (ties handled).

    Large samples are screened on a grid of ``grid_points`` order statistics of ``a``: the differences at
    the grid values are exact, each open interval between grid values gets an upper bound from the CDFs at
    its ends, and only the b points inside intervals whose bound beats the best exact value are examined.
    """
    n, m = a.shape[0], b.shape[0]
    if n < 16 * grid_points:
        return max(_ks_at(a, b, None), 0) / (n * m)
    g = np.unique(a[(np.arange(1, grid_points, dtype=np.int64) * n) // grid_points])
    ar, al = np.searchsorted(a, g, "right"), np.searchsorted(a, g, "left")
    br, bl = np.searchsorted(b, g, "right"), np.searchsorted(b, g, "left")
    best = int(max(np.abs(ar * m - br * n).max(), np.abs(al * m - bl * n).max()))
    # intervals (-inf, g0), (g0, g1), ..., (g_last, inf): counts at their ends
    a_lo, a_hi = np.r_[0, ar], np.r_[al, n]
    b_lo, b_hi = np.r_[0, br], np.r_[bl, m]
    bound = np.maximum(a_hi * m - b_lo * n, b_hi * n - a_lo * m)
    cand = np.flatnonzero((bound > best) & (b_hi > b_lo))
    if cand.size:
        lens = b_hi[cand] - b_lo[cand]
        offs = np.repeat(b_lo[cand] - np.r_[0, np.cumsum(lens)[:-1]], lens)
        idx = offs + np.arange(lens.sum())
        best = max(best, _ks_at(a, b, idx))
    return max(best, 0) / (n * m)


def _row_stats(a: np.ndarray, b: np.ndarray, edges: np.ndarray,
               grid: Grid | None) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Bin counts of a and b at ``edges``, KS statistic and W1 of one pair of sorted samples."""
    ca = np.searchsorted(a, edges, "right")
    cb = np.searchsorted(b, edges, "right")
    ks = _ks_statistic(a, b)
    if grid is None:
        w = float(np.abs(a.astype(np.float64) - b).mean())
    else:
        ia, ib, du = grid
        w = float(np.dot(du, np.abs(a[ia].astype(np.float64) - b[ib])))
    return ca, cb, ks, w


def binned_stats(ref_counts: np.ndarray, cur_counts: np.ndarray) -> dict[str, np.ndarray]:
    """PSI and JS distance from bin counts (or weights) [K, B] of the reference and the window, per row.

    For monitors that keep histograms instead of rows: the bins should be quantile bins of the reference.
    Proportions are floored at ``PSI_EPS`` for PSI only. Rows with an empty window give NaN.
    """
    ref = np.atleast_2d(np.asarray(ref_counts, dtype=np.float64))
    cur = np.atleast_2d(np.asarray(cur_counts, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = ref / ref.sum(axis=1, keepdims=True)
        q = cur / cur.sum(axis=1, keepdims=True)
        pe, qe = np.maximum(p, PSI_EPS), np.maximum(q, PSI_EPS)
        psi = ((qe - pe) * np.log(qe / pe)).sum(axis=1)
        mix = 0.5 * (p + q)
        kl_p = np.where(p > 0, p * np.log2(p / mix), 0.0).sum(axis=1)
        kl_q = np.where(q > 0, q * np.log2(q / mix), 0.0).sum(axis=1)
    js = np.sqrt(np.clip(0.5 * (kl_p + kl_q), 0.0, 1.0))
    empty = ~(cur.sum(axis=1) > 0)
    psi[empty], js[empty] = np.nan, np.nan
    return {"psi": psi, "js": js}


def _finish(rows: list[tuple[np.ndarray, np.ndarray, float, float]], n: int, m: int,
            ref_std: np.ndarray) -> dict[str, np.ndarray]:
    """PSI, JS, normalised W1, KS and its p-value from the per-row results of :func:`_row_stats`."""
    ca, cb = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    ks, w = np.array([r[2] for r in rows]), np.array([r[3] for r in rows])
    K = ca.shape[0]
    z = np.zeros((K, 1), dtype=np.int64)
    out = binned_stats(np.diff(np.hstack([z, ca, z + n]), axis=1), np.diff(np.hstack([z, cb, z + m]), axis=1))
    out["wasserstein"] = w / np.where(ref_std > 0, ref_std, 1.0)
    out["ks"], out["ks_pvalue"] = ks, _ks_pvalue(ks, n, m)
    return out


def pairwise_stats(a_sorted: np.ndarray, b_sorted: np.ndarray, edges: np.ndarray,
                   ref_std: np.ndarray) -> dict[str, np.ndarray]:
    """All statistics for K (reference row, current row) pairs of sorted samples.

    ``a_sorted`` [K, n] and ``b_sorted`` [K, m] are sorted along axis 1; ``edges`` [K, bins-1] are the
    reference's bin edges; ``ref_std`` [K] the reference standard deviations. Returns ``psi``, ``js``,
    ``wasserstein``, ``ks`` and ``ks_pvalue``, each [K].
    """
    K, n = a_sorted.shape
    m = b_sorted.shape[1]
    grid = None if n == m else _quantile_grid(n, m)
    rows = [_row_stats(a_sorted[k], b_sorted[k], edges[k], grid) for k in range(K)]
    return _finish(rows, n, m, ref_std)


@dataclass
class Comparison:
    """Statistics of one window against the reference, one value per column."""

    columns: list[str]
    n_ref: int
    n_cur: int
    stats: dict[str, np.ndarray] = field(repr=False)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.stats[name]

    def to_frame(self):
        """A pandas DataFrame, one row per column, one column per statistic."""
        import pandas as pd  # noqa: PLC0415 - only needed for reporting

        return pd.DataFrame(self.stats, index=pd.Index(self.columns, name="column"))


class Reference:
    """A fitted reference sample: sorted columns, quantile bin edges and standard deviations."""

    def __init__(self, X: np.ndarray, bins: int = 10, columns: list[str] | None = None, threads: int = 1):
        """Fit on ``X`` [rows, F] (rows >= 2, no NaN). ``bins``: quantile bins for PSI and JS (2..100);
        ``threads``: columns sorted in parallel.

        Raises :class:`UserError` on a bad shape, NaN or ``bins``.
        """
        if not 2 <= int(bins) <= 100:
            raise UserError(f"bins (={bins}) must be between 2 and 100")
        X = _as_matrix(X, "reference")
        self.bins = int(bins)
        self.n = X.shape[0]
        self.columns = list(columns) if columns is not None else [f"x{i}" for i in range(X.shape[1])]
        if len(self.columns) != X.shape[1]:
            raise UserError(f"columns (={len(self.columns)} names) must match the reference's "
                            f"{X.shape[1]} columns")
        self.sorted = sorted_columns(X, threads)
        self.edges = _bin_edges(self.sorted, self.bins)
        self.std = _row_std(self.sorted)

    def compare(self, X: np.ndarray, threads: int = 1) -> Comparison:
        """Every statistic of window ``X`` [rows, F] against the reference.

        ``threads`` > 1 spreads the columns over a thread pool (numpy releases the GIL in sort and
        searchsorted). Raises :class:`UserError` on a bad shape or NaN.
        """
        X = _as_matrix(X, "window")
        if X.shape[1] != len(self.columns):
            raise UserError(f"window has {X.shape[1]} columns; the reference has {len(self.columns)}")
        m = X.shape[0]
        grid = None if self.n == m else _quantile_grid(self.n, m)

        def one(k: int) -> tuple[np.ndarray, np.ndarray, float, float]:
            b = np.sort(X[:, k])
            return _row_stats(self.sorted[k], b, self.edges[k], grid)

        if threads > 1 and X.shape[1] > 1:
            with ThreadPoolExecutor(threads) as pool:
                rows = list(pool.map(one, range(X.shape[1])))
        else:
            rows = [one(k) for k in range(X.shape[1])]
        stats = _finish(rows, self.n, m, self.std)
        return Comparison(self.columns, self.n, m, stats)


def compare(X_ref: np.ndarray, X_cur: np.ndarray, bins: int = 10) -> Comparison:
    """One-shot :meth:`Reference.compare` (fits the reference each call)."""
    return Reference(X_ref, bins).compare(X_cur)


#: how each statistic scales with the effective sample size n m / (n + m) under no change
_NULL_POWER = {"psi": 1.0, "js": 0.5, "wasserstein": 0.5, "ks": 0.5}


@dataclass
class Thresholds:
    """Per-column alarm thresholds of each statistic at nominal ``level`` for windows of ``window`` rows."""

    level: float
    window: int
    n_ref: int
    values: dict[str, np.ndarray]

    def alarms(self, comp: Comparison) -> dict[str, np.ndarray]:
        """Boolean [F] per statistic: above its threshold; ``ks_p``: KS p-value below ``level``."""
        out = {s: comp[s] > self.values[s] for s in STATS}
        out["ks_p"] = comp["ks_pvalue"] < self.level
        return out


def _neff(n: int, m: int) -> float:
    return n * m / (n + m)


def calibrate(X_ref: np.ndarray, window: int, *, level: float = 0.05, n_resamples: int = 200,
              rng: np.random.Generator | None = None, bins: int = 10, max_rows: int = 5000) -> Thresholds:
    """Thresholds that a change-free window of ``window`` rows exceeds with probability ``level``.

    Permutation splits of the reference: each of ``n_resamples`` draws splits a random subset of the
    reference rows into a pseudo-reference (``n1 = min(n - m1, max_rows)`` rows) and a pseudo-window
    (``m1 = min(window, n // 2, max_rows)`` rows) and computes every statistic. The threshold is the
    ``ceil((1 - level)(B + 1))``-th smallest of the B values (the conformal rank: exceeded with probability
    <= level by an exchangeable new value), rescaled from the split's effective sample size
    ``n1 m1 / (n1 + m1)`` to the real one ``n window / (n + window)`` by the statistic's null scaling
    (1/n_eff for PSI, 1/sqrt(n_eff) for JS, Wasserstein and KS).

    Raises :class:`UserError` for a level outside (0, 0.5], fewer than ``1/level`` resamples, a window
    below 10 rows or a reference below 20 rows.
    """
    if rng is None:
        raise UserError("calibrate needs an explicit numpy Generator (rng=...)")
    if not 0 < level <= 0.5:
        raise UserError(f"level (={level}) must be in (0, 0.5]")
    if n_resamples < int(np.ceil(1 / level)):
        raise UserError(f"n_resamples (={n_resamples}) must be >= 1/level (={int(np.ceil(1 / level))})")
    X = _as_matrix(X_ref, "reference")
    n, F = X.shape
    if window < 10 or n < 20:
        raise UserError(f"window (={window}) must be >= 10 rows and the reference (={n} rows) >= 20 rows")
    m1 = min(window, n // 2, max_rows)
    n1 = min(n - m1, max_rows)
    vals = {s: np.empty((n_resamples, F)) for s in STATS}
    chunk = max(1, 2_000_000 // (F * (n1 + m1)))
    for start in range(0, n_resamples, chunk):
        reps = range(start, min(n_resamples, start + chunk))
        idx = [rng.permutation(n)[: n1 + m1] for _ in reps]
        A = np.concatenate([sorted_columns(X[i[:n1]]) for i in idx])
        Bw = np.concatenate([sorted_columns(X[i[n1:]]) for i in idx])
        st = pairwise_stats(A, Bw, _bin_edges(A, bins), _row_std(A))
        for s in STATS:
            vals[s][start:start + len(reps)] = st[s].reshape(len(reps), F)
    k = min(int(np.ceil((1 - level) * (n_resamples + 1))), n_resamples)
    ratio = _neff(n1, m1) / _neff(n, window)
    thr = {s: np.sort(vals[s], axis=0)[k - 1] * ratio ** _NULL_POWER[s] for s in STATS}
    return Thresholds(level=level, window=int(window), n_ref=n, values=thr)
