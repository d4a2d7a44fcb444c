"""`deepepi evaluate` and `deepepi predict`: run detectors on recorded data and judge them.

The figures themselves are ``deepepi.scoring``'s (window metrics, alarm logics, event detection,
latency, FP/24 h, the threshold sweep and operating point, the bootstrap). Modules here, in
data-flow order: ``data`` (read files into windows + events table), ``qsweep`` (ensemble q sweep),
``szcore`` (timescoring), ``runner`` (orchestration), ``plots`` and ``report`` (outputs), and
``predict`` (per-datapoint probabilities and alarms, batch or streamed as the app does).
"""
