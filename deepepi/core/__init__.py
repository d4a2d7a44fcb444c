"""The lowest layer: what every other package may use and nothing here imports from above.

``errors`` (typed one-line errors with exit codes), ``io`` and ``atomic_dir`` (atomic writes, output
guards), ``jsonlimits`` and ``jsonsafe`` (bounded JSON in, clean JSON out), ``quiet`` (framework
start-up noise), ``config`` (the reference-compatible schema and the one number rule),
``preprocessing``, ``constants`` (the app's and OSDB's fixed numbers, once), ``threshold`` (the one
threshold reader) and ``extras`` (the one "needs pip install deepepi[x]" importer).
"""
