"""`purgatory phasing SCENARIO` with no optional flags on the tiny scenario; bad overrides are one-line errors
with nothing written."""

from __future__ import annotations

import json

from sim.cli import main
from tests.conftest import TINY


def test_phasing_runs_four_arms_and_writes_numbers_and_figure(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["phasing", str(TINY)]) == 0
    text = capsys.readouterr().out
    assert "value at risk avoided" in text and "1 seed, no CI" in text
    out = tmp_path / "results" / "sepsis_tiny-phasing"
    r = json.loads((out / "phasing.json").read_text())
    assert (out / "phasing.png").stat().st_size > 0
    # a big bang puts every hospital on the bad release; the phased gate holds it at the pilot
    assert r["bad_model_exposure_big_bang"] > 2 * r["bad_model_exposure_phased"] > 0
    assert r["bad_release_sites_live_at_end_phased"] == 2
    assert r["days_to_full_value_big_bang"] == 0 < r["days_to_full_value_phased"]
    assert r["value_forgone_by_phasing"] > 0  # a good release reaches fewer patients while phasing
    assert r["value_at_risk_avoided"] == r["value_at_risk_big_bang"] - r["value_at_risk_phased"]


def test_bad_override_is_one_line_exit_2_nothing_written(tmp_path, capsys) -> None:
    out = tmp_path / "o"
    assert main(["phasing", str(TINY), "--bad", "model.thresh=0.1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "model.thresh" in err
    assert main(["phasing", str(TINY), "--bad", "nonsense", "--out", str(out)]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert not out.exists()
