"""KPI recorder: per-site, per-day accumulators in numpy, emitted as a tidy pandas frame."""

from __future__ import annotations

import numpy as np
import pandas as pd

AGGREGATIONS = ("sum", "max")
#: KPIs the engine records for every domain
ENGINE_KPIS = {"live_days": "sum", "monitor_psi": "max", "monitor_alarms": "sum"}


class KPIRecorder:
    """Accumulates ``kpi x site x day`` values. ``aggregations`` maps each KPI to "sum" or "max"."""

    def __init__(self, aggregations: dict[str, str], n_sites: int, n_days: int):
        bad = {k: v for k, v in aggregations.items() if v not in AGGREGATIONS}
        if bad:
            raise ValueError(f"KPI aggregations (={bad}) must be one of {AGGREGATIONS}")
        self.names = list(aggregations)
        self.aggregation = dict(aggregations)
        self.index = {k: i for i, k in enumerate(self.names)}
        self.values = np.zeros((len(self.names), n_sites, n_days), dtype=np.float64)
        self.n_days = n_days

    def add(self, kpi: str, sites: np.ndarray | int, values: np.ndarray | float, day: int) -> None:
        """Add ``values`` to ``kpi`` at ``sites`` on ``day`` (repeated sites accumulate)."""
        if 0 <= day < self.n_days:
            np.add.at(self.values[self.index[kpi], :, day], sites, values)

    def add_site_vector(self, kpi: str, per_site: np.ndarray, day: int) -> None:
        """Add a full per-site vector (length n_sites) to ``kpi`` on ``day``."""
        if 0 <= day < self.n_days:
            self.values[self.index[kpi], :, day] += per_site

    def set_max(self, kpi: str, per_site: np.ndarray, day: int) -> None:
        if 0 <= day < self.n_days:
            row = self.values[self.index[kpi], :, day]
            np.maximum(row, per_site, out=row)

    def window(self, kpi: str, sites: np.ndarray, day_from: int, day_to: int) -> float:
        """Sum of ``kpi`` over ``sites`` and days ``[day_from, day_to)``."""
        day_from = max(day_from, 0)
        return float(self.values[self.index[kpi]][sites, day_from:day_to].sum())

    def total(self, kpi: str, mask: np.ndarray | None = None) -> float:
        """Sum over all sites and days, or over a ``site x day`` boolean mask."""
        arr = self.values[self.index[kpi]]
        return float(arr.sum() if mask is None else arr[mask].sum())

    def to_frame(self, run_id: str, seed: int, period_days: int, site_names: list[str]) -> pd.DataFrame:
        """Tidy frame ``run_id, seed, site, period, kpi, value``; ``period`` counts ``period_days`` blocks."""
        n_kpi, n_sites, n_days = self.values.shape
        n_periods = -(-n_days // period_days)
        pad = n_periods * period_days - n_days
        arr = np.pad(self.values, ((0, 0), (0, 0), (0, pad)))
        blocks = arr.reshape(n_kpi, n_sites, n_periods, period_days)
        agg = np.empty((n_kpi, n_sites, n_periods))
        for k, name in enumerate(self.names):
            agg[k] = blocks[k].max(axis=-1) if self.aggregation[name] == "max" else blocks[k].sum(axis=-1)
        kpi_idx, site_idx, period_idx = np.meshgrid(
            np.arange(n_kpi), np.arange(n_sites), np.arange(n_periods), indexing="ij"
        )
        return pd.DataFrame(
            {
                "run_id": pd.Categorical([run_id] * agg.size),
                "seed": np.full(agg.size, seed, dtype=np.int64),
                "site": pd.Categorical.from_codes(site_idx.ravel(), categories=site_names),
                "period": period_idx.ravel().astype(np.int32),
                "kpi": pd.Categorical.from_codes(kpi_idx.ravel(), categories=self.names),
                "value": agg.ravel(),
            }
        )
