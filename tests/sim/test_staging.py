"""A staged folder replaces its target only when complete; a failure leaves the old one untouched."""

from __future__ import annotations

import pytest

from sim.staging import staged_folder


def test_success_replaces_and_failure_keeps_the_old_folder(tmp_path) -> None:
    out = tmp_path / "out"
    with staged_folder(out) as tmp:
        (tmp / "a.txt").write_text("1")
    assert (out / "a.txt").read_text() == "1"
    with pytest.raises(RuntimeError), staged_folder(out) as tmp:
        (tmp / "a.txt").write_text("2")
        raise RuntimeError("half-written")
    assert (out / "a.txt").read_text() == "1"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
