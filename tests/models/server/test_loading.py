"""Which registry models a server loads: named ones, and by default every model (and nothing else)."""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pytest

from models.registry import Registry
from models.server.batching import BatchConfig
from models.server.loading import load_models
from models.server.runner import ServerProcess
from sim.engine import run
from sim.errors import UserError
from sim.scenario import apply_overrides, load_scenario
from tests.conftest import ROOT, SCENARIOS
from tests.models.server.conftest import body


def test_unknown_model_flag_is_a_user_error(registry: Registry) -> None:
    with pytest.raises(UserError, match="no model 'nope'"):
        load_models(registry, ["nope"], BatchConfig())
    with pytest.raises(UserError, match="no version"):
        load_models(registry, ["tiny@0000"], BatchConfig())


def test_serve_with_no_models_flag_serves_every_model_the_case_studies_wrote(tmp_path) -> None:
    """After the sepsis and maintenance scenarios have trained into a registry (the maintenance ones also
    cache RUL evaluations there), ``purgatory serve`` without --models serves each model and skips, with a
    reason, anything that is not one."""
    registry = Registry(tmp_path / "registry")
    for name in ("sepsis_tiny", "fleet_tiny", "plant_tiny"):
        sc = apply_overrides(load_scenario(SCENARIOS / f"{name}.toml"), {"scenario.horizon_days": 1})
        run(sc, 1, registry=registry)
    (registry.root / "notes").mkdir()  # a stray folder someone left there
    assert set(registry.models()) == {"sepsis", "fleet_failure", "plant_failure"}
    assert registry.not_models() == {"notes": "holds no model entry (<name>/<key>/card.json)"}
    log = tmp_path / "serve.log"
    with ServerProcess(["--registry", str(registry.root)], log=log, cwd=ROOT) as server:
        with urllib.request.urlopen(f"{server.url}/v2/models", timeout=5) as r:
            assert json.loads(r.read())["models"] == ["fleet_failure", "plant_failure", "sepsis"]
        for name in registry.models():
            with urllib.request.urlopen(f"{server.url}/v2/models/{name}", timeout=5) as r:
                n = json.loads(r.read())["inputs"][0]["shape"][1]
            req = urllib.request.Request(
                f"{server.url}/v2/models/{name}/infer", data=json.dumps(body(np.zeros((2, n)))).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=5) as r:
                out = {o["name"]: o for o in json.loads(r.read())["outputs"]}
            assert out["probabilities"]["shape"] == [2, 2]
    assert "skipping" in log.read_text() and "notes: holds no model entry" in log.read_text()
