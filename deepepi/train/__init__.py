"""`deepepi train`: one data pipeline, then a Keras or PyTorch trainer, then one set of artefacts.

Framework code lives in `keras_trainer`, `torch_trainer` and `torch_optim` only; they are imported when a run
actually needs them, so the rest of this package loads with neither framework installed.
"""
