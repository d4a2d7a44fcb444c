"""Scoring: every figure a detector is judged by, defined once, numpy only (imports deepepi.core alone).

``metrics`` (confusion ``Counts`` and their rates, the training metrics), ``agreement`` (argmax
agreement), ``per_event`` (window -> event reductions), ``alarm`` (the app's alarm rules),
``segments`` (where the alarm machine restarts), ``evaldata`` (what is scored), ``events`` (alarm
logics, detection, latency, FP/24 h), ``window_metrics``, ``operating`` (threshold sweep, operating
point, the training threshold rule) and ``bootstrap`` (the one event bootstrap).
"""
