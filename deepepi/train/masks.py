"""Lockstep dropout: both frameworks take their dropout masks from one shared numpy stream.

Native dropout draws its masks from each framework's own RNG, so two frameworks can never drop the
same units. In lockstep runs (``deepepi prove-trainers``) every dropout layer is swapped for a mask
layer (``keras_lockstep.FedDropout``, ``torch_lockstep.FedDropout``) that asks a ``MaskFeed`` for
its mask: ``default_rng([seed, MASK_STREAM, step, crc32(layer name)])`` draws uniforms in the Keras
(channels-last) layout, a unit is kept where the draw is >= rate, and kept units are scaled by
1 / (1 - rate), Keras's and PyTorch's inverted-dropout rule. The mask depends on the seed, the global
step and the layer's name only, so both frameworks see the same mask at the same step. Normal
training never uses this: it keeps each framework's native dropout.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

MASK_STREAM = 2  # keeps mask draws apart from the batch streams (default_rng([seed, epoch(, 1)]))


@dataclass
class MaskFeed:
    """The shared dropout-mask stream; the runner sets ``step`` (global, 0-based) before each step."""

    seed: int
    step: int = 0

    def mask(self, name: str, shape: tuple[int, ...], rate: float) -> np.ndarray:
        """The scaled keep-mask (float64, ``shape`` in channels-last order) of layer ``name`` at ``step``."""
        rng = np.random.default_rng([int(self.seed), MASK_STREAM, int(self.step), zlib.crc32(name.encode())])
        keep = rng.random(tuple(int(s) for s in shape)) >= rate
        return keep / (1.0 - rate)
