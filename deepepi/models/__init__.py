"""The models: one folder per architecture (``deepepi_cnn/``, ``speccnn/``, ``amber/``, each with its
spec and its Keras and PyTorch builders), the shared spec ``base``, the ``registry`` (names -> specs
and builders), neutral ``weights``, ``frameworks`` (each framework's model modules by role) and the
framework-shared pieces named for what they hold (``keras_files``, ``keras_weights``,
``keras_predict``, ``torch_bn``, ``torch_weights``, ``torch_checkpoint``, ``torch_predict``).

Only framework-free modules are imported here; framework modules are imported by callers when needed.
"""

from deepepi.models.base import ParamCounts
from deepepi.models.deepepi_cnn.spec import ArchSpec

__all__ = ["ArchSpec", "ParamCounts"]
