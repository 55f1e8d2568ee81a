"""Phased rollout as data and as an experiment: strategies, gates, sequential tests, gate statistics.

Public API (unchanged since ``sim/rollout.py``): ``SCHEMA``, ``GATE_SCHEMA``, ``check`` (cross-field rules),
``assign_waves``, ``controller`` (the SimPy process) and ``metric_value``. Modules: ``spec`` (the
``[rollout]`` section), ``waves``, ``gates`` (pass / fail / inconclusive / wait), ``sequential`` (mSPRT),
``controller``, ``gatestats`` (false-rollback and missed-regression rates by simulation) and ``compare``
(big bang vs phased). See docs/rollout.md.
"""

from sim.rollout.controller import controller
from sim.rollout.gates import metric_value
from sim.rollout.spec import GATE_SCHEMA, SCHEMA, check
from sim.rollout.waves import assign_waves

__all__ = ["GATE_SCHEMA", "SCHEMA", "assign_waves", "check", "controller", "metric_value"]
