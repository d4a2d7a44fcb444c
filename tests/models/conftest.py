"""Each framework's DeepEpi model functions in one namespace (``K``: Keras, ``T``: PyTorch), for the
model tests: the builder plus the shared weights, prediction and file modules, by role
(``deepepi.models.frameworks``)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest


def _one_namespace(framework: str) -> SimpleNamespace:
    from deepepi.models.frameworks import model_parts

    parts = model_parts(framework, what="the model tests")
    modules = (parts.deepepi, parts.weights, parts.predict, parts.files)
    return SimpleNamespace(**{n: getattr(m, n) for m in modules for n in dir(m) if not n.startswith("_")})


@pytest.fixture(scope="module")
def K() -> SimpleNamespace:
    return _one_namespace("tensorflow")


@pytest.fixture(scope="module")
def T() -> SimpleNamespace:
    return _one_namespace("pytorch")
