"""The one preprocessing rule shared by windowing, training and the ONNX graphs.

Raw input is acceleration magnitude in milli-g. The model sees g (divide by 1000) and, when
``normalise`` is set, each window minus its mean, divided by its population std (a flat window,
std <= FLAT_STD g, is only mean-subtracted: a constant window's std is float32 rounding noise of the
mean, which would otherwise be blown up to unit variance differently by each runtime).
Exporters re-implement exactly this in graph ops; this numpy version is the reference for tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MILLI_G_PER_G = 1000.0
FLAT_STD = 1e-6  # g; real sensor noise is >= 1e-3 g


@dataclass(frozen=True)
class Preprocessing:
    scale: float = 1.0 / MILLI_G_PER_G
    normalise: bool = False

    def to_dict(self) -> dict:
        return {"input_unit": "milli-g", "scale": self.scale, "normalise": self.normalise,
                "normalise_rule": "per-window (x - mean) / std, population std; "
                                  f"std <= {FLAT_STD:g}: x - mean"}

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessing":
        return cls(scale=float(d["scale"]), normalise=bool(d["normalise"]))

    def apply(self, raw_milli_g: np.ndarray) -> np.ndarray:
        """[n, window] milli-g -> float32 model input, computed in float32 like the graphs."""
        x = np.asarray(raw_milli_g, dtype=np.float32) * np.float32(self.scale)
        if self.normalise:
            mean = x.mean(axis=-1, keepdims=True, dtype=np.float32)
            centred = x - mean
            std = np.sqrt(np.mean(centred * centred, axis=-1, keepdims=True, dtype=np.float32))
            x = centred / np.where(std > np.float32(FLAT_STD), std, np.float32(1.0))
        return x.astype(np.float32, copy=False)


def from_config(cfg) -> Preprocessing:  # noqa: ANN001 - deepepi.core.config.Config, kept import-light
    return Preprocessing(normalise=bool(cfg.processing["normalise"]))


__all__ = ["Preprocessing", "from_config", "MILLI_G_PER_G", "FLAT_STD"]
