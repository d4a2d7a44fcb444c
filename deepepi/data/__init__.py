"""Data pipeline: OSDB JSON -> flattened CSV -> windows, event-level splits and balancing, built-in dataset.

Modules: ``osdb`` (streaming flatten), ``csvio`` (schema-checked CSV loader), ``windows``,
``split``, ``balance`` and ``synth`` (the built-in synthetic OSDB dataset).
"""
