"""Bad strategy or gate specifications: one line naming the key, the value and what is allowed; through the
CLI exit 2 and nothing written. The package keeps the old module's public API."""

from __future__ import annotations

import pytest

from sim import rollout
from sim.cli import main
from sim.errors import ScenarioError
from tests.conftest import TINY, tiny_with

RATIO = "alerts_true/alerts"


@pytest.mark.parametrize(
    ("overrides", "key", "allowed"),
    [
        ({"rollout__strategy": "lighthouse_yolo"}, "rollout.strategy", "one of 'phased', 'big_bang'"),
        ({"rollout__on_inconclusive": "ask"}, "rollout.on_inconclusive", "one of 'fail', 'pause'"),
        ({"rollout__on_failure_limit": "panic"}, "rollout.on_failure_limit", "one of 'stall', 'rollback'"),
        ({"rollout__review_delay_days": 0}, "rollout.review_delay_days", ">= 1"),
        ({"rollout__waves": [2, 3]}, "rollout.waves", "must add up to the number of sites (8)"),
        ({"rollout__gates": [{"metric": RATIO, "min": 0.3, "max": 0.2}]}, "rollout.gates[0].min", "<= max"),
        ({"rollout__gates": [{"metric": RATIO, "min": 0.3, "fail_min": 0.4}]}, "rollout.gates[0].fail_min",
         "<= min"),
        ({"rollout__gates": [{"metric": "alerts", "min": 0.3, "test": "msprt"}]}, "rollout.gates[0].metric",
         "proportion"),
        ({"rollout__gates": [{"metric": RATIO, "min": 1.0, "test": "msprt"}]}, "rollout.gates[0].min",
         "strictly between 0 and 1"),
        ({"rollout__gates": [{"metric": RATIO, "test": "bayes"}]}, "rollout.gates[0].test", "'msprt'"),
        ({"rollout__gates": [{"metric": RATIO, "min": 0.1, "alpha": 0.9}]}, "rollout.gates[0].alpha",
         "<= 0.5"),
        ({"rollout__rollback": [{"metric": RATIO, "min": 0.1, "test": "msprt"}]}, "rollout.rollback[0].test",
         "'threshold'"),
    ],
)
def test_bad_rollout_specs_are_one_line_errors(overrides, key, allowed) -> None:
    with pytest.raises(ScenarioError) as err:
        tiny_with(**overrides)
    assert err.value.key == key
    assert allowed in str(err.value) and "\n" not in str(err.value)


def test_bad_gate_in_a_file_exits_2_and_writes_nothing(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[scenario]\nextends = "{TINY}"\nname = "bad"\n\n[rollout]\n'
                   'gates = [{ metric = "alerts", min = 0.2, test = "msprt" }]\n')
    out = tmp_path / "out"
    assert main(["run", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "rollout.gates[0].metric" in err
    assert not out.exists()


def test_public_api_is_importable_from_sim_rollout() -> None:
    for name in ("SCHEMA", "GATE_SCHEMA", "check", "assign_waves", "controller", "metric_value"):
        assert hasattr(rollout, name)
