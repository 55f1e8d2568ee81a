"""Building the site x period panel from a tidy KPI frame: go-live period, rollbacks, partial last period."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.errors import UserError
from sim.impact.panel import from_kpis


def _frame() -> pd.DataFrame:
    rows = []
    live = {"S1": [0, 3, 7, 7, 2], "S2": [0, 0, 0, 7, 1], "S10": [0, 0, 0, 0, 0], "S3": [0, 7, 0, 0, 0]}
    for site, days in live.items():
        for p, d in enumerate(days):
            rows += [("r-1", site, p, "live_days", float(d)), ("r-1", site, p, "y", 10.0 + p),
                     ("r-1", site, p, "y_cf", 11.0 + p)]
    return pd.DataFrame(rows, columns=["run_id", "site", "period", "kpi", "value"])


def test_go_live_period_rollback_and_partial_period() -> None:
    p = from_kpis(_frame(), "r-1", "y", "y_cf", period_days=7, horizon_days=30)  # 4 whole weeks of 5 rows
    assert p.sites == ["S1", "S2", "S3", "S10"]
    assert p.y.shape == (4, 4)
    assert p.g.tolist() == [1, 3, 1, np.inf]
    assert p.rolled_back.tolist() == [False, False, True, False]
    assert np.all(p.true_effect() == -1.0)


def test_missing_kpi_is_a_user_error_naming_it() -> None:
    with pytest.raises(UserError, match="'nope'"):
        from_kpis(_frame(), "r-1", "nope", None, period_days=7, horizon_days=35)
