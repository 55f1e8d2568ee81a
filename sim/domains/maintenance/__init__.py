"""Predictive-maintenance machinery shared by the ``fleet`` (Ford vans) and ``plant`` (manufacturer) domains.

- ``degradation.py``: C-MAPSS-like run-to-failure units (random initial wear, exponential degradation,
  operating conditions, per-type sensor signatures, noise, several failure modes, sudden failures) and
  windowed sensor features; the same code generates training data and simulated sensor days.
- ``model.py``: LightGBM failure-within-horizon classifier (-> ONNX via the registry) and a RUL regressor
  evaluated with the PHM08 score.
- ``metrics.py``: precision / recall of alerts, lead-time distribution, PHM08 score and RMSE.
- ``world.py``: the daily SimPy process shared by both domains: two arms (with and without the alert path)
  on common random numbers, alerts, routing hook, acting, and service jobs on ``simpy.Resource`` workshops.
- ``plots.py``: rollout funnel, downtime by site with and without alerts, alerts vs actions.
"""
