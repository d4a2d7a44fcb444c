"""SpecCnn (the reference's SpecCnnModel) as a framework-free spec: spectrogram front end + 2-D CNN.

The reference turns a rolling buffer of ``analysisSamp`` samples into a spectrogram outside the model
and feeds the image; here the spectrogram is the first layer of the graph, so the model takes the same
[batch, window] g windows as DeepEpi and the ONNX contract is unchanged. Column j is the |DFT| of
samples [j*specStep, j*specStep + specSamp) of the window's last ``analysisSamp`` samples, with the
slice mean removed, rectangular window, bins 0..specSamp/2-1, values below ``zero_tol`` set to 0
(osd-training-semantics section 7). Framing, mean removal and the DFT are one linear map: a strided
1-D convolution with the constant kernel ``dft_kernel`` (not a weight), so both frameworks and ONNX
compute it the same way. Stack: n x [Conv2D 3x3 same -> ReLU -> MaxPool2D(2, same) -> Dropout -> BN]
-> Flatten (channels-last order) -> Dropout -> Dense logits.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from deepepi.core.errors import SpecError
from deepepi.models.base import SpecMethods, check_bn, check_int, check_rate, int_tuple, tagged_dict

if TYPE_CHECKING:
    from deepepi.core.config import Config

BN_PARAMS = ("gamma", "beta", "moving_mean", "moving_variance")


@dataclass(frozen=True)
class SpecCnnSpec(SpecMethods):
    """Spectrogram CNN; defaults are the reference's example (specSamp 50, specStep 5, 3 layers of 32)."""

    window: int = 750
    analysis_samples: int = 750
    spec_samples: int = 50
    spec_step: int = 5
    filters: tuple[int, ...] = (32, 32, 32)
    kernel_size: int = 3
    dropout: float = 0.1
    zero_tol: float = 0.001
    num_classes: int = 2
    bn_epsilon: float = 1e-3
    bn_momentum: float = 0.99
    model: ClassVar[str] = "specCnn"

    def __post_init__(self) -> None:
        object.__setattr__(self, "filters", int_tuple("filters", self.filters))
        for name in ("window", "analysis_samples", "spec_step", "kernel_size"):
            check_int(name, getattr(self, name))
        check_int("spec_samples", self.spec_samples, 2)
        check_int("num_classes", self.num_classes, 2)
        if not self.filters:
            raise SpecError("filters: empty; at least one conv layer is needed")
        for i, f in enumerate(self.filters):
            check_int(f"filters[{i}]", f)
        if self.kernel_size % 2 == 0:
            raise SpecError(f"kernel_size: got {self.kernel_size}, expected an odd number ('same' padding)")
        check_rate("dropout", self.dropout)
        if isinstance(self.zero_tol, bool) or not isinstance(self.zero_tol, (int, float)) or not self.zero_tol >= 0:
            raise SpecError(f"zero_tol: got {self.zero_tol!r}, expected a number >= 0")
        check_bn(self.bn_epsilon, self.bn_momentum)
        if self.analysis_samples > self.window:
            raise SpecError(f"analysis_samples {self.analysis_samples} exceeds the window {self.window}")
        if self.spec_samples > self.analysis_samples:
            raise SpecError(f"spec_samples {self.spec_samples} exceeds analysis_samples {self.analysis_samples}")

    # ----- construction -------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: Config) -> "SpecCnnSpec":
        """modelConfig analysisSamp (null: the whole window), specSamp, specStep, nLayers, filters (null:
        32 per layer), numClasses, bnEpsilon/bnMomentum (null: Keras's 1e-3 / 0.99, the reference being a
        Keras model). Dropout is the reference's fixed 0.1."""
        m = cfg.model
        n_layers = int(m["nLayers"])
        filters = (32,) * n_layers if m["filters"] is None else tuple(m["filters"])
        if len(filters) != n_layers:
            raise SpecError(f"modelConfig.filters has {len(filters)} items but modelConfig.nLayers is {n_layers}; "
                            f"they must be equal", source=cfg.source)
        try:
            return cls(window=int(cfg.window),
                       analysis_samples=int(cfg.window if m["analysisSamp"] is None else m["analysisSamp"]),
                       spec_samples=int(m["specSamp"]), spec_step=int(m["specStep"]), filters=filters,
                       num_classes=int(m["numClasses"]),
                       bn_epsilon=1e-3 if m["bnEpsilon"] is None else float(m["bnEpsilon"]),
                       bn_momentum=0.99 if m["bnMomentum"] is None else float(m["bnMomentum"]))
        except SpecError as err:
            raise SpecError(str(err), source=cfg.source) from None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["filters"] = list(d["filters"])
        return tagged_dict(self.model, d)

    # ----- derived facts ------------------------------------------------------------------------
    @property
    def n_bins(self) -> int:
        return self.spec_samples // 2

    @property
    def n_spec(self) -> int:
        """Spectrogram columns, the reference's formula (every column lies inside the analysis span)."""
        a, s, t = self.analysis_samples, self.spec_samples, self.spec_step
        return a // t - s // t + 1 if t < s else a // t

    @property
    def offset(self) -> int:
        """Index of the first analysed sample: the analysis span is the end of the window."""
        return self.window - self.analysis_samples

    def image_shapes(self) -> list[tuple[int, int]]:
        """(frequency, time) size entering each conv layer, then after the last pool."""
        h, w = self.n_bins, self.n_spec
        out = [(h, w)]
        for _ in self.filters:
            h, w = math.ceil(h / 2), math.ceil(w / 2)
            out.append((h, w))
        return out

    @property
    def flat_features(self) -> int:
        h, w = self.image_shapes()[-1]
        return h * w * self.filters[-1]

    def dft_kernel(self) -> np.ndarray:
        """float32 [spec_samples, 2 * n_bins]: mean removal then cos / -sin DFT basis (real, imaginary)."""
        n = np.arange(self.spec_samples)[:, None]
        k = np.arange(self.n_bins)[None, :]
        angle = 2.0 * np.pi * n * k / self.spec_samples
        basis = np.concatenate([np.cos(angle), -np.sin(angle)], axis=1)
        return (basis - basis.mean(axis=0, keepdims=True)).astype(np.float32)

    def numpy_spectrogram(self, x_g: np.ndarray) -> np.ndarray:
        """The reference's definition in float64 with np.fft (for tests): [n, n_bins, n_spec]."""
        x = np.asarray(x_g, dtype=np.float64)[:, self.offset:]
        cols = []
        for j in range(self.n_spec):
            s = x[:, j * self.spec_step:j * self.spec_step + self.spec_samples]
            mag = np.abs(np.fft.fft(s - s.mean(axis=1, keepdims=True), axis=1))[:, :self.n_bins]
            cols.append(np.where(mag < self.zero_tol, 0.0, mag))
        return np.stack(cols, axis=2)

    def layer_names(self) -> list[str]:
        names = ["input", "spectrogram"]
        for i in range(1, len(self.filters) + 1):
            names += [f"conv{i}", f"conv{i}_relu", f"conv{i}_pool", f"conv{i}_dropout", f"conv{i}_bn"]
        return names + ["flatten", "dropout", "logits"]

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {}
        prev, k = 1, self.kernel_size
        for i, f in enumerate(self.filters, start=1):
            shapes[f"conv{i}/kernel"] = (k, k, prev, f)
            shapes[f"conv{i}/bias"] = (f,)
            for p in BN_PARAMS:
                shapes[f"conv{i}_bn/{p}"] = (f,)
            prev = f
        shapes["logits/kernel"] = (self.flat_features, self.num_classes)
        shapes["logits/bias"] = (self.num_classes,)
        return shapes

    def summary_lines(self) -> list[str]:
        h, w = self.image_shapes()[-1]
        return [f"SpecCnn: window {self.window}, spectrogram of the last {self.analysis_samples} samples "
                f"({self.spec_samples}-sample slices every {self.spec_step}) -> {self.n_bins} x {self.n_spec}, "
                f"{len(self.filters)} conv layers {list(self.filters)}, flatten {h} x {w} x {self.filters[-1]} = "
                f"{self.flat_features}, {self.num_classes} classes"]
