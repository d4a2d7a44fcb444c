"""The DeepEpi CNN: one spec, a Keras and a PyTorch builder, neutral weights, a model registry.

Only framework-free modules are imported here; `keras_deepepi` and `torch_deepepi` are imported by
their callers when needed.
"""

from deepepi.models.spec import ArchSpec, ParamCounts

__all__ = ["ArchSpec", "ParamCounts"]
