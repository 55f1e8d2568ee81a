"""perf/gate_stats.py at reduced scale: prints every gate x effect row and the analytic value, writes JSON."""

from __future__ import annotations

import json

from perf import gate_stats


def test_gate_stats_prints_and_writes(tmp_path, capsys) -> None:
    assert gate_stats.main(["--reps", "500", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "1 - (1 - 0.05)^25 = 0.7226" in text
    rows = json.loads((tmp_path / "gate_stats.json").read_text())["rows"]
    assert len(rows) == 4 * len(gate_stats.EFFECTS)
    aa = {r["gate"]: r["rollback_rate"] for r in rows if r["effect"] == 0}
    assert aa["mSPRT (always valid)"] < aa["uncorrected, all data so far"] < aa[
        "uncorrected, each look its own window"]
