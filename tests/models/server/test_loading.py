"""Which registry models a server loads: named ones, and by default every model (and nothing else)."""

from __future__ import annotations

import pytest

from models.registry import Registry
from models.server.batching import BatchConfig
from models.server.loading import load_models
from sim.errors import UserError


def test_unknown_model_flag_is_a_user_error(registry: Registry) -> None:
    with pytest.raises(UserError, match="no model 'nope'"):
        load_models(registry, ["nope"], BatchConfig())
    with pytest.raises(UserError, match="no version"):
        load_models(registry, ["tiny@0000"], BatchConfig())
