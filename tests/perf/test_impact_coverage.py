"""perf/impact_coverage.py at reduced scale: one row per estimator with bias and coverage, and its table."""

from __future__ import annotations

import json

from perf import impact_coverage


def test_coverage_study_prints_and_writes(tmp_path, capsys) -> None:
    assert impact_coverage.main(["--reps", "20", "--out", str(tmp_path)]) == 0
    assert "Callaway-Sant'Anna" in capsys.readouterr().out
    rows = json.loads((tmp_path / "coverage.json").read_text())["rows"]
    assert [r["reps"] for r in rows] == [20, 20, 20]
    assert (tmp_path / "coverage_table.png").stat().st_size > 0
    cs = rows[-1]
    assert abs(cs["bias"]) < 4 * cs["bias_mc_se"] + 1e-9
