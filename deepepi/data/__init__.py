"""Data pipeline: OSDB JSON -> flattened CSV -> windows, event-level splits and balancing, built-in dataset.

Modules: ``osdb`` (streaming flatten), ``csvio`` (schema-checked CSV loader), ``source`` (CSV or
OSDB JSON input as one frame), ``windows``, ``gaps``, ``augment``, ``split``, ``balance``, ``dataset``
(training's data preparation) and ``synth`` (the built-in synthetic OSDB dataset).
"""
