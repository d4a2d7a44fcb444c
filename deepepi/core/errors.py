"""Typed errors: each names the file, field or value at fault, and carries the CLI exit code."""

from __future__ import annotations


class DeepEpiError(Exception):
    """Base error. The CLI prints ``str(err)`` on one line and exits with ``exit_code``."""

    exit_code = 2

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class ConfigError(DeepEpiError):
    """A config key has a wrong type or value, or the file is not a usable config."""


class DataError(DeepEpiError):
    """An input data file (OSDB JSON, CSV, npz) is missing, malformed or unusable."""


class SpecError(DeepEpiError):
    """The architecture spec cannot describe a working model (e.g. window shorter than the receptive field)."""


class ModelError(DeepEpiError):
    """A model name, model file or weights file cannot be resolved or loaded."""


class ExportError(DeepEpiError):
    """An ONNX export failed or its self-check against the native model did not pass; nothing was written."""

    exit_code = 1


class UnusableInputError(DeepEpiError):
    """Verification cannot even start: missing file, not ONNX, or contracts too different to compare."""


class OutputPathError(DeepEpiError):
    """An output path that would destroy an input (it resolves to the same file)."""


class ShapeError(ExportError):
    """The exported model's output has another shape than the source model's (or is not finite where
    the check reads it together with the shape); nothing was written."""


class AtolError(ExportError):
    """The exported model's outputs differ from the source model's beyond the absolute tolerance
    (or by a non-finite amount); nothing was written."""


class AgreementError(ExportError):
    """A quantised export picks the source model's class on too few check windows; nothing was written."""
