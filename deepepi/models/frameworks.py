"""Each framework's model operations under one role name, so run resolution, export and import never
spell a framework's module names themselves.

``model_parts(framework, what=...)`` imports (lazily, quietly, through ``core.extras.require``) the
framework's modules for files (native save/load, reference files), neutral weights (counts,
export/import), prediction and the DeepEpi builder; a missing framework is one line naming the extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deepepi.core.extras import EXTRAS, require

PART_MODULES: dict[str, dict[str, str]] = {
    "tensorflow": {"files": "deepepi.models.keras_files", "weights": "deepepi.models.keras_weights",
                   "predict": "deepepi.models.keras_predict", "deepepi": "deepepi.models.deepepi_cnn.keras"},
    "pytorch": {"files": "deepepi.models.torch_checkpoint", "weights": "deepepi.models.torch_weights",
                "predict": "deepepi.models.torch_predict", "deepepi": "deepepi.models.deepepi_cnn.torch"},
}


@dataclass(frozen=True)
class ModelParts:
    """One framework's model modules by role."""

    framework: str
    files: Any     # keras_files (load_keras_model, save_keras_model, read_reference) | torch_checkpoint
    weights: Any   # count_parameters, export_weights, import_weights
    predict: Any   # predict_proba
    deepepi: Any   # the DeepEpi builder (build_keras_model | DeepEpiCnn)


def model_parts(framework: str, *, what: str, needs: str | None = None) -> ModelParts:
    """The framework's model modules; ``what``/``needs`` word the error when the framework is missing."""
    modules = {role: require(name, extra=EXTRAS[framework], what=what, needs=needs)
               for role, name in PART_MODULES[framework].items()}
    return ModelParts(framework, **modules)
