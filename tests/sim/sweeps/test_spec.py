"""Sweep specs: parsing, one clear error per bad axis (nothing run), and deterministic designs."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim import cli
from sim.errors import ScenarioError
from sim.rng import replication_seeds
from sim.sweeps.spec import build_design, parse_spec
from tests.conftest import ROOT

TINY = ROOT / "scenarios" / "sweeps" / "tiny.toml"
BASE = (ROOT / "scenarios" / "sepsis_spot.toml").as_posix()


def spec_file(tmp_path: Path, axes: str, sweep: str = 'design = "grid"') -> Path:
    path = tmp_path / "spec.toml"
    head = f'[sweep]\nname = "t"\nbase = "{BASE}"\nroot_seed = 7\nreplications = 3\n'
    path.write_text(f"{head}{sweep}\n\n{axes}\n")
    return path


def test_example_specs_parse_and_seeds_come_from_the_root_seed() -> None:
    for path in sorted((ROOT / "scenarios" / "sweeps").glob("*.toml")):
        spec, _ = parse_spec(path)
        assert spec.seeds == replication_seeds(spec.root_seed, spec.replications)
        assert len(build_design(spec).points) >= 2, path
    spec, base = parse_spec(TINY)
    assert base.get("hospitals.count") == 2  # [sweep.fixed] applied to the base
    design = build_design(spec)
    assert design.params == ("model.threshold", "adoption.act_logit_base")
    assert design.points == [(0.2, 0.0), (0.2, 2.0), (0.4, 0.0), (0.4, 2.0)]  # grid, last axis fastest


BAD_AXES = {
    "unknown parameter": ('[[axis]]\nparam = "model.treshold"\nvalues = [0.1]\n', "model.treshold"),
    "unknown section": ('[[axis]]\nparam = "modle.threshold"\nvalues = [0.1]\n', "modle.threshold"),
    "empty range (step)": ('[[axis]]\nparam = "model.threshold"\n'
                           'range = {start = 0.5, stop = 0.1, step = 0.1}\n',
                           "empty"),
    "empty range (num)": ('[[axis]]\nparam = "model.threshold"\nrange = {start = 0.1, stop = 0.5, num = 0}\n',
                          "empty range"),
    "empty values": ('[[axis]]\nparam = "model.threshold"\nvalues = []\n', "non-empty"),
    "wrong type (str for float)": ('[[axis]]\nparam = "model.threshold"\nvalues = [0.1, "high"]\n', "'high'"),
    "wrong type (float for int)": ('[[axis]]\nparam = "hospitals.count"\nvalues = [2.5]\n',
                                   "hospitals.count"),
    "out of range": ('[[axis]]\nparam = "model.threshold"\nvalues = [1.5]\n', "<= 1"),
    "sampled bool": ('[[axis]]\nparam = "monitor.enabled"\nlow = 0\nhigh = 1\n', "numeric"),
    "low >= high": ('[[axis]]\nparam = "model.threshold"\nlow = 0.5\nhigh = 0.5\n', "low must be < high"),
}


@pytest.mark.parametrize("case", sorted(BAD_AXES))
def test_bad_axis_is_one_clear_error(tmp_path: Path, case: str) -> None:
    axes, needle = BAD_AXES[case]
    sweep = 'design = "lhs"\nsamples = 4' if "low" in axes else 'design = "grid"'
    with pytest.raises(ScenarioError) as info:
        parse_spec(spec_file(tmp_path, axes, sweep))
    msg = str(info.value)
    assert "\n" not in msg and needle in msg and "spec.toml" in msg


def test_bad_axis_via_cli_exits_2_and_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    spec = spec_file(tmp_path, BAD_AXES["empty range (step)"][0])
    assert cli.main(["sweep", str(spec), "--out", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("purgatory sweep: ") and "axis[0].range" in err[0]
    assert not out.exists()
    # the installed command, in a fresh process: exit 2, one line, no traceback, nothing written
    spec = spec_file(tmp_path, BAD_AXES["unknown parameter"][0])
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "sweep", str(spec), "--out", str(out)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "model.treshold" in proc.stderr and "unknown parameter" in proc.stderr
    assert not out.exists()


def test_range_is_inclusive_and_typed(tmp_path: Path) -> None:
    spec, _ = parse_spec(spec_file(tmp_path, '[[axis]]\nparam = "model.threshold"\n'
                                   'range = {start = 0.1, stop = 0.5, step = 0.1}\n'
                                   '[[axis]]\nparam = "scenario.horizon_days"\n'
                                   'range = {start = 100, stop = 172, num = 3}\n'
                                   '[[axis]]\nparam = "screening.rule"\nvalues = ["qsofa", "sirs"]\n'))
    assert spec.axes[0].values == (0.1, 0.2, 0.3, 0.4, 0.5)
    assert spec.axes[1].values == (100, 136, 172) and all(type(v) is int for v in spec.axes[1].values)
    assert len(build_design(spec).points) == 5 * 3 * 2


SAMPLED_AXES = ('[[axis]]\nparam = "model.threshold"\nlow = 0.1\nhigh = 0.5\n'
                '[[axis]]\nparam = "scenario.horizon_days"\nlow = 100\nhigh = 172\n'
                '[[axis]]\nparam = "adoption.act_logit_base"\nlow = -1.0\nhigh = 3.0\n')


def test_latin_hypercube_is_stratified_deterministic_and_typed(tmp_path: Path) -> None:
    spec, _ = parse_spec(spec_file(tmp_path, SAMPLED_AXES, 'design = "lhs"\nsamples = 20'))
    d1, d2 = build_design(spec), build_design(spec)
    assert d1.points == d2.points and len(d1.points) == 20
    x = np.array([p[0] for p in d1.points])
    assert sorted(np.floor((x - 0.1) / 0.4 * 20).astype(int)) == list(range(20))  # one sample per stratum
    counts = [p[1] for p in d1.points]
    assert all(type(c) is int and 100 <= c <= 172 for c in counts)


def test_sobol_design_has_the_saltelli_layout(tmp_path: Path) -> None:
    spec, _ = parse_spec(spec_file(tmp_path, SAMPLED_AXES, 'design = "sobol"\nsamples = 8'))
    d = build_design(spec)
    assert len(d.points) == 8 * (3 + 2)
    pts = {b: [p for p, bb in zip(d.points, d.blocks, strict=True) if bb == b] for b in set(d.blocks)}
    for i in range(3):
        for a, b, ab in zip(pts["A"], pts["B"], pts[f"AB{i}"], strict=True):
            assert ab[i] == b[i] and all(ab[j] == a[j] for j in range(3) if j != i)
    with pytest.raises(ScenarioError, match="power of 2"):
        parse_spec(spec_file(tmp_path, SAMPLED_AXES, 'design = "sobol"\nsamples = 10'))


def test_morris_trajectories_move_one_parameter_at_a_time(tmp_path: Path) -> None:
    spec, _ = parse_spec(spec_file(tmp_path, SAMPLED_AXES, 'design = "morris"\nsamples = 5\nlevels = 4'))
    d = build_design(spec)
    assert len(d.points) == 5 * 4
    step = {0: 0.4 * 2 / 3, 1: 72 * 2 / 3, 2: 4.0 * 2 / 3}  # delta = p / (2 (p - 1)) of each range
    for t in range(5):
        traj = d.points[4 * t: 4 * t + 4]
        moved = []
        for a, b in itertools.pairwise(traj):
            diff = [j for j in range(3) if a[j] != b[j]]
            assert len(diff) == 1
            j = diff[0]
            assert b[j] - a[j] == pytest.approx(step[j], abs=0.51 if j == 1 else 1e-9)
            moved.append(j)
        assert sorted(moved) == [0, 1, 2]
