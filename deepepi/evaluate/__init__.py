"""`deepepi evaluate`: judge detectors per window, per event, through the app's alarm logic and SzCORE.

Modules, in data-flow order: ``data`` (windows + events table), ``window_metrics``, ``events`` (alarm
logics, detection, latency, FP/24 h), ``operating`` (threshold sweep, operating point), ``szcore``
(timescoring), ``bootstrap``, ``runner`` (orchestration), ``plots`` and ``report`` (outputs).
"""
