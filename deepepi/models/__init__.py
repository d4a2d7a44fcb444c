"""The models (DeepEpi, SpecCnn, AMBER): one spec each, Keras and PyTorch builders, neutral weights,
a model registry and dispatch by model name (`specs`).

Only framework-free modules are imported here; the framework-named builder modules (`keras_*`,
`torch_*`) are imported by their callers when needed.
"""

from deepepi.models.base import ParamCounts
from deepepi.models.deepepi_cnn.spec import ArchSpec

__all__ = ["ArchSpec", "ParamCounts"]
