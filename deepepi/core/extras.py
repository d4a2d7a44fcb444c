"""Import an optional dependency, or say in one line which ``pip install 'deepepi[extra]'`` brings it.

Every place that needs a framework or a deploy runtime goes through ``require``, so the message
always names the extra and the package, and TensorFlow's start-up lines stay captured.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from deepepi.core.errors import DeepEpiError, ModelError

EXTRAS = {"tensorflow": "tf", "pytorch": "torch"}  # framework -> the extra that installs it


def install_hint(extra: str) -> str:
    return f"pip install 'deepepi[{extra}]'"


def require(module: str, *, extra: str, what: str, needs: str | None = None,
            error: type[DeepEpiError] = ModelError) -> ModuleType | Any:
    """``importlib.import_module(module)`` (``module:attr`` returns the attribute), quietly.

    A missing package is ``error``: "<what> needs <needs> (pip install 'deepepi[<extra>]'): <reason>".
    """
    from deepepi.core.quiet import captured_output

    name, _, attr = module.partition(":")
    try:
        with captured_output():  # TensorFlow's and torchao's start-up lines
            loaded = importlib.import_module(name)
    except ImportError as exc:
        needed = f"{needs} ({install_hint(extra)})" if needs else install_hint(extra)
        raise error(f"{what} needs {needed}: {exc}") from None
    return getattr(loaded, attr) if attr else loaded
