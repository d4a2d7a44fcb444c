"""AMBER (Pordoy's model, the reference's AmberModel) as a framework-free spec.

The reference feeds one 125-sample datapoint; here the model takes the contract's [batch, window]
g windows and its first layers keep the last ``datapoint`` samples (the current datapoint), so the
ONNX contract is unchanged. Stack (osd-training-semantics section 7): 3 x [Conv1D k3 same -> BN ->
ReLU -> MaxPool1D(2)] -> BiLSTM(row_hidden, sequences) -> LSTM(col_hidden, sequences) -> dot
self-attention -> fusion (concat [lstm, attention] -> MultiHeadAttention(heads, key_dim) over it ->
residual add) -> Dense(dense_units, ReLU) -> BN -> Dropout -> global max pool -> Dense logits.
Both frameworks use the Keras LSTM (one bias per gate, gates i, f, c, o, sigmoid / tanh) and Keras
MultiHeadAttention weight layouts, so the parameters match one for one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from deepepi.core.errors import SpecError
from deepepi.models.base import SpecMethods, check_bn, check_int, check_rate, int_tuple, tagged_dict

if TYPE_CHECKING:
    from deepepi.core.config import Config

BN_PARAMS = ("gamma", "beta", "moving_mean", "moving_variance")
LSTM_PARAMS = ("kernel", "recurrent_kernel", "bias")
MHA_PARAMS = ("query_kernel", "query_bias", "key_kernel", "key_bias", "value_kernel", "value_bias",
              "output_kernel", "output_bias")


@dataclass(frozen=True)
class AmberSpec(SpecMethods):
    """AMBER; defaults are the reference's (filters 64/128/256, hidden 128/128, 4 heads of 64)."""

    window: int = 750
    datapoint: int = 125
    filters: tuple[int, ...] = (64, 128, 256)
    kernel_size: int = 3
    row_hidden: int = 128
    col_hidden: int = 128
    heads: int = 4
    key_dim: int = 64
    dense_units: int = 128
    dropout: float = 0.1
    num_classes: int = 2
    bn_epsilon: float = 1e-3
    bn_momentum: float = 0.99
    model: ClassVar[str] = "amber"

    def __post_init__(self) -> None:
        object.__setattr__(self, "filters", int_tuple("filters", self.filters))
        for name in ("window", "datapoint", "kernel_size", "row_hidden", "col_hidden", "heads", "key_dim",
                     "dense_units"):
            check_int(name, getattr(self, name))
        check_int("num_classes", self.num_classes, 2)
        if not self.filters:
            raise SpecError("filters: empty; at least one conv layer is needed")
        for i, f in enumerate(self.filters):
            check_int(f"filters[{i}]", f)
        if self.kernel_size % 2 == 0:
            raise SpecError(f"kernel_size: got {self.kernel_size}, expected an odd number ('same' padding)")
        check_rate("dropout", self.dropout)
        check_bn(self.bn_epsilon, self.bn_momentum)
        if self.datapoint > self.window:
            raise SpecError(f"datapoint {self.datapoint} exceeds the window {self.window}")
        if self.steps < 1:
            raise SpecError(f"datapoint {self.datapoint} is too short for {len(self.filters)} pooling layers "
                            f"(needs at least {2 ** len(self.filters)} samples)")

    @classmethod
    def from_config(cls, cfg: Config) -> "AmberSpec":
        """modelConfig amberRowHidden, amberColHidden, filters (null: 64/128/256), numClasses,
        bnEpsilon/bnMomentum (null: Keras's 1e-3 / 0.99); the datapoint is 5 s of sampleFreq."""
        m = cfg.model
        filters = (64, 128, 256) if m["filters"] is None else tuple(m["filters"])
        try:
            return cls(window=int(cfg.window), datapoint=5 * int(m["sampleFreq"]), filters=filters,
                       row_hidden=int(m["amberRowHidden"]), col_hidden=int(m["amberColHidden"]),
                       num_classes=int(m["numClasses"]),
                       bn_epsilon=1e-3 if m["bnEpsilon"] is None else float(m["bnEpsilon"]),
                       bn_momentum=0.99 if m["bnMomentum"] is None else float(m["bnMomentum"]))
        except SpecError as err:
            raise SpecError(str(err), source=cfg.source) from None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["filters"] = list(d["filters"])
        return tagged_dict(self.model, d)

    @property
    def steps(self) -> int:
        """Time steps after the conv stack (each MaxPool1D(2) 'valid' halves, rounding down)."""
        n = self.datapoint
        for _ in self.filters:
            n //= 2
        return n

    @property
    def fusion_dim(self) -> int:
        return 2 * self.col_hidden

    def layer_names(self) -> list[str]:
        names = ["input", "reshape", "datapoint"]
        for i in range(1, len(self.filters) + 1):
            names += [f"conv{i}", f"conv{i}_bn", f"conv{i}_relu", f"conv{i}_pool"]
        return names + ["bilstm", "lstm", "attention", "concat", "mha", "residual", "dense", "dense_bn",
                        "dropout", "gmp", "logits"]

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {}
        prev = 1
        for i, f in enumerate(self.filters, start=1):
            shapes[f"conv{i}/kernel"] = (self.kernel_size, prev, f)
            shapes[f"conv{i}/bias"] = (f,)
            for p in BN_PARAMS:
                shapes[f"conv{i}_bn/{p}"] = (f,)
            prev = f
        r, c, d = self.row_hidden, self.col_hidden, self.fusion_dim
        for direction in ("forward", "backward"):
            shapes.update(_lstm(f"bilstm/{direction}_", prev, r))
        shapes.update(_lstm("lstm/", 2 * r, c))
        hk = (self.heads, self.key_dim)
        for part in ("query", "key", "value"):
            shapes[f"mha/{part}_kernel"] = (d, *hk)
            shapes[f"mha/{part}_bias"] = hk
        shapes["mha/output_kernel"] = (*hk, d)
        shapes["mha/output_bias"] = (d,)
        shapes["dense/kernel"] = (d, self.dense_units)
        shapes["dense/bias"] = (self.dense_units,)
        for p in BN_PARAMS:
            shapes[f"dense_bn/{p}"] = (self.dense_units,)
        shapes["logits/kernel"] = (self.dense_units, self.num_classes)
        shapes["logits/bias"] = (self.num_classes,)
        return shapes

    def summary_lines(self) -> list[str]:
        return [f"AMBER: window {self.window}, last {self.datapoint} samples, conv {list(self.filters)} -> "
                f"{self.steps} steps, BiLSTM {self.row_hidden}, LSTM {self.col_hidden}, attention, fusion "
                f"MultiHeadAttention {self.heads} x {self.key_dim}, dense {self.dense_units}, "
                f"{self.num_classes} classes"]


def _lstm(prefix: str, n_in: int, hidden: int) -> dict[str, tuple[int, ...]]:
    """Keras LSTM weights: kernel (in, 4h), recurrent_kernel (h, 4h), bias (4h); gates i, f, c, o."""
    return {f"{prefix}kernel": (n_in, 4 * hidden), f"{prefix}recurrent_kernel": (hidden, 4 * hidden),
            f"{prefix}bias": (4 * hidden,)}
