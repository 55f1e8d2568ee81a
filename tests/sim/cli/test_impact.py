"""`purgatory impact RESULTS_DIR` with no optional flags on a tiny run; one-line errors, nothing written."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from sim.cli import main
from sim.domains import load_domain
from sim.results import write_results
from tests.conftest import tiny, tiny_run


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("impact") / "sepsis_tiny"
    write_results(out, tiny(), [tiny_run(1)], 1)
    return out


def test_impact_writes_estimates_next_to_the_true_effect(results, capsys) -> None:
    assert main(["impact", str(results)]) == 0
    text = capsys.readouterr().out
    assert "Callaway-Sant'Anna" in text and "two-way fixed effects" in text
    out = results / "impact"
    names = ("impact.json", "impact.csv", "rollout_timeline.png", "event_study.png", "estimator_table.png")
    for name in names:
        assert (out / name).stat().st_size > 0, name
    res = json.loads((out / "impact.json").read_text())
    assert res["outcome"] == load_domain("sepsis").IMPACT["outcome"]
    table = pd.read_csv(out / "impact.csv")
    assert len(table) == 3
    # the simulator's true effect: the counterfactual KPIs of the same run (the AI lowers expected deaths)
    assert (table["true_effect"] < 0).all()
    cs = table[table["estimator"].str.startswith("Callaway")].iloc[0]
    assert cs["ci_low"] < cs["estimate"] < cs["ci_high"]


@pytest.mark.parametrize("missing", ["kpis.parquet", "summary.json"])
def test_incomplete_results_folder_is_one_line_exit_2_nothing_written(results, tmp_path, capsys, missing):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in ("kpis.parquet", "events.parquet", "summary.json"):
        if f != missing:
            (bad / f).write_bytes((results / f).read_bytes())
    assert main(["impact", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and missing in err
    assert not (bad / "impact").exists()


def test_bad_flag_and_missing_folder_are_one_line_errors(tmp_path, capsys) -> None:
    assert main(["impact", str(tmp_path / "nope")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["impact", str(tmp_path), "--control", "everyone"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--control" in err
