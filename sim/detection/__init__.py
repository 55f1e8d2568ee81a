"""The drift-detection library: tests of a model's inputs and outputs for change; performance without labels.

- :mod:`sim.detection.detectors`: batch two-sample statistics (PSI, Jensen-Shannon, Wasserstein, KS) on
  feature windows and model scores, vectorised over columns, with calibrated thresholds;
- :mod:`sim.detection.streaming`: streaming change detectors (ADWIN, Page-Hinkley, a periodic baseline) and
  their ARL0 calibration;
- :mod:`sim.detection.cbpe`: confidence-based performance estimation before labels arrive;
- :mod:`sim.detection.feature_watch`: a per-site feature-window monitor the engine's ``[monitor]`` uses;
- :mod:`sim.detection.evaluation`: the ``purgatory drift-eval`` protocol (streams with known change points).
"""
