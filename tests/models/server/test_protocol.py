"""V2 request parsing (no server): what is accepted and what is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.server.protocol import parse_infer_request
from tests.models.server.conftest import body


def test_parse_rejects_non_numbers_and_accepts_nested_rows() -> None:
    ok = parse_infer_request(
        json.dumps(body(np.ones((2, 3)), data=[[1, 2, 3], [4, 5, 6.5]])).encode(),
        "input",
        3,
        {"label": "INT64"},
    )
    assert ok.X.dtype == np.float32 and ok.X.tolist() == [[1, 2, 3], [4, 5, 6.5]]
    with pytest.raises(ValueError, match="only numbers"):
        parse_infer_request(json.dumps(body(np.ones((1, 3)), data=[1, True, 2])).encode(), "input", 3, {})
