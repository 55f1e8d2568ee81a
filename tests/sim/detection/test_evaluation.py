"""drift-eval harness: renewal bookkeeping, larger shifts detected sooner, the CLI writes its outputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sim.cli import drift_eval
from sim.detection import evaluation as drifteval
from sim.errors import UserError


def test_renewal_counts_false_alarms_and_delay_exactly() -> None:
    X = np.zeros((3, 1000))
    tau = np.array([250, 30, 950])
    fa, exposure, delay = drifteval.run_renewal("periodic", {"period": 100}, X, tau, post=60)
    # alarms at 99, 199, 299, ...: stream 0 has 2 false alarms then a delay of 299 - 250 + 1
    np.testing.assert_array_equal(fa, [2, 0, 9])
    np.testing.assert_array_equal(exposure, tau)
    assert delay[0] == 50
    assert np.isnan(delay[1])       # 99 - 30 + 1 = 70 > post = 60: missed
    assert delay[2] == 50


@pytest.fixture(scope="module")
def matched() -> tuple[dict, pd.DataFrame]:
    return drifteval.calibrate_all(1500.0, np.random.default_rng(21), n_streams=80)


def test_calibration_table_reports_default_and_matched_arl0(matched: tuple[dict, pd.DataFrame]) -> None:
    params, arl = matched
    assert set(params) == {"adwin", "page_hinkley", "periodic"}
    assert params["periodic"]["period"] == 1500
    m = arl[arl.setting != "default"].set_index("detector")
    for kind in ("adwin", "page_hinkley"):    # out-of-sample ARL0 within 4 standard errors of the target
        assert abs(m.arl0[kind] - 1500) < 4 * m.arl0_se[kind] + 0.1 * 1500, m.loc[kind]
    assert set(arl[arl.setting == "default"].detector) == {"adwin", "page_hinkley"}


def test_larger_shifts_are_detected_sooner(matched: tuple[dict, pd.DataFrame]) -> None:
    params, _ = matched
    shifts = [0.25, 0.5, 1.0, 2.0]
    res = drifteval.evaluate(params, shifts, np.random.default_rng(22), n_streams=80,
                             change_range=(300, 900), post=1500)
    for kind in ("adwin", "page_hinkley"):
        g = res[res.detector == kind].set_index("shift_sd")
        assert g.delay_median.is_monotonic_decreasing and g.delay_median.is_unique, g
        assert g.delay_mean[2.0] < g.delay_mean[0.25] / 3
        assert g.missed_rate[2.0] <= g.missed_rate[0.25] + 0.05
    per = res[res.detector == "periodic"].set_index("shift_sd")
    det = res[res.detector != "periodic"]
    assert (per.delay_median > 400).all()            # about half a period whatever the shift
    assert (det[det.shift_sd >= 0.5].delay_median < 200).all()
    assert per.false_alarms_per_1000.mean() == pytest.approx(1000 / 1500, rel=0.35)


def test_cli_writes_table_figure_and_metadata(tmp_path) -> None:
    out = tmp_path / "de"
    rc = drift_eval.main(["--out", str(out), "--streams", "20", "--arl0", "1200", "--shifts", "0.5,2",
                         "--post", "800", "--batch-seeds", "2"])
    assert rc == 0
    for name in ("summary.csv", "summary.md", "arl0.csv", "batch_levels.csv", "meta.json", "drift_eval.png"):
        assert (out / name).stat().st_size > 0, name
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary.detector) == {"adwin", "page_hinkley", "periodic"}
    assert {"delay_mean", "delay_median", "missed_rate", "false_alarms_per_1000"} <= set(summary.columns)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["schema_version"] == drifteval.SCHEMA_VERSION and meta["seed"] == 20261125
    assert not list(out.glob("*.tmp*"))


@pytest.mark.parametrize("argv", [["--shifts", "a,b"], ["--shifts", "-1"], ["--arl0", "100"],
                                  ["--streams", "3"], ["--change-min", "10", "--change-max", "5"]])
def test_bad_arguments_raise_user_error(argv: list[str]) -> None:
    with pytest.raises(UserError):
        drift_eval.main(argv)
