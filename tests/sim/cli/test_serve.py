"""``purgatory serve``'s flags: bad values are one-line user errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.cli.serve import main
from sim.errors import UserError


def test_bad_serve_flags_are_user_errors(tmp_path: Path) -> None:
    base = ["--registry", str(tmp_path), "--port", "0"]  # flags are checked before any model loads
    for extra, match in (
        (["--host", "0.0.0.0"], "needs --token"),
        (["--max-batch", "0"], "--max-batch"),
        (["--timeout", "0"], "--timeout"),
        (["--max-inflight", "0"], "--max-inflight"),
    ):
        with pytest.raises(UserError, match=match):
            main(base + extra)
