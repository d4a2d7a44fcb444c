"""AMBER in PyTorch, built from an AmberSpec; submodules carry the spec's layer names.

Imported lazily (needs PyTorch). torch's nn.LSTM has two biases per gate and nn.MultiheadAttention
packs its projections differently from Keras, so both would break exact parameter parity; the LSTM
and multi-head attention here hold their parameters in the Keras layouts (LSTM kernel (in, 4h),
recurrent_kernel (h, 4h), one bias (4h), gates i, f, c, o; attention kernels (dim, heads, key_dim))
and compute what Keras computes. Initialisation follows Keras's defaults (Glorot uniform kernels,
orthogonal recurrent kernels, forget-gate bias 1, zero biases).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from deepepi.models.amber.spec import AmberSpec
from deepepi.models.torch_bn import KerasBatchNorm1d, bn_tensors


def _glorot(t: torch.Tensor, fan_in: int, fan_out: int) -> None:
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    nn.init.uniform_(t, -limit, limit)


class KerasLSTM(nn.Module):
    """Keras LSTM (sigmoid / tanh, return_sequences) on [B, T, in] -> [B, T, hidden]; ``reverse`` runs it
    backwards in time and returns the outputs in input order, as Keras Bidirectional's backward layer."""

    def __init__(self, n_in: int, hidden: int, *, reverse: bool = False) -> None:
        super().__init__()
        self.hidden, self.reverse = hidden, reverse
        self.kernel = nn.Parameter(torch.empty(n_in, 4 * hidden))
        self.recurrent_kernel = nn.Parameter(torch.empty(hidden, 4 * hidden))
        self.bias = nn.Parameter(torch.zeros(4 * hidden))
        _glorot(self.kernel, n_in, 4 * hidden)
        for g in range(4):
            nn.init.orthogonal_(self.recurrent_kernel.data[:, g * hidden:(g + 1) * hidden])
        with torch.no_grad():
            self.bias[hidden:2 * hidden] = 1.0  # Keras unit_forget_bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reverse:
            x = x.flip(1)
        h = x.new_zeros(x.shape[0], self.hidden)
        c = x.new_zeros(x.shape[0], self.hidden)
        z_in = x @ self.kernel + self.bias
        outs = []
        for t in range(x.shape[1]):
            i, f, g, o = (z_in[:, t] + h @ self.recurrent_kernel).chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        out = torch.stack(outs, dim=1)
        return out.flip(1) if self.reverse else out


class BiLSTM(nn.Module):
    """Keras Bidirectional(LSTM, merge_mode='concat') on the conv stack's [B, C, T] -> [B, T, 2 * hidden]."""

    def __init__(self, n_in: int, hidden: int) -> None:
        super().__init__()
        self.forward_lstm = KerasLSTM(n_in, hidden)
        self.backward_lstm = KerasLSTM(n_in, hidden, reverse=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)
        return torch.cat([self.forward_lstm(x), self.backward_lstm(x)], dim=-1)


class KerasMultiHeadAttention(nn.Module):
    """Keras MultiHeadAttention(heads, key_dim) self-attention on [B, T, dim] -> [B, T, dim]."""

    def __init__(self, dim: int, heads: int, key_dim: int) -> None:
        super().__init__()
        self.key_dim = key_dim
        for part in ("query", "key", "value"):
            kernel = nn.Parameter(torch.empty(dim, heads, key_dim))
            _glorot(kernel, dim, heads * key_dim)
            self.register_parameter(f"{part}_kernel", kernel)
            self.register_parameter(f"{part}_bias", nn.Parameter(torch.zeros(heads, key_dim)))
        self.output_kernel = nn.Parameter(torch.empty(heads, key_dim, dim))
        _glorot(self.output_kernel, heads * key_dim, dim)
        self.output_bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = torch.einsum("btd,dhk->bthk", x, self.query_kernel) + self.query_bias
        k = torch.einsum("btd,dhk->bthk", x, self.key_kernel) + self.key_bias
        v = torch.einsum("btd,dhk->bthk", x, self.value_kernel) + self.value_bias
        scores = torch.einsum("bshk,bthk->bhts", k, q * (1.0 / math.sqrt(self.key_dim)))
        attended = torch.einsum("bhts,bshk->bthk", torch.softmax(scores, dim=-1), v)
        return torch.einsum("bthk,hkd->btd", attended, self.output_kernel) + self.output_bias


class _Channels(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], 1, -1)


class _LastSamples(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., -self.n:]


class _DotAttention(nn.Module):
    """Keras Attention (score_mode 'dot', no scale) with query = key = value."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x @ x.transpose(1, 2), dim=-1) @ x


class _Concat(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([a, b], dim=-1)


class _Add(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class _DenseReLU(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(super().forward(x))


class _BatchNormLast(KerasBatchNorm1d):
    """BatchNorm over the last axis of [B, T, C], as Keras BatchNormalization(axis=-1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class _MaxOverTime(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=1)


class Amber(nn.Module):
    """forward(x float32 [B, window] in g) -> logits [B, num_classes]; softmax is the caller's job."""

    def __init__(self, spec: AmberSpec) -> None:
        super().__init__()
        self.spec = spec
        momentum = 1.0 - spec.bn_momentum
        self.reshape = _Channels()
        self.datapoint = _LastSamples(spec.datapoint)
        prev, k = 1, spec.kernel_size
        for i, f in enumerate(spec.filters, start=1):
            self.add_module(f"conv{i}", nn.Conv1d(prev, f, k, padding=k // 2))
            self.add_module(f"conv{i}_bn", KerasBatchNorm1d(f, eps=spec.bn_epsilon, momentum=momentum))
            self.add_module(f"conv{i}_relu", nn.ReLU())
            self.add_module(f"conv{i}_pool", nn.MaxPool1d(2))
            prev = f
        self.bilstm = BiLSTM(prev, spec.row_hidden)
        self.lstm = KerasLSTM(2 * spec.row_hidden, spec.col_hidden)
        self.attention = _DotAttention()
        self.concat = _Concat()
        self.mha = KerasMultiHeadAttention(spec.fusion_dim, spec.heads, spec.key_dim)
        self.residual = _Add()
        self.dense = _DenseReLU(spec.fusion_dim, spec.dense_units)
        self.dense_bn = _BatchNormLast(spec.dense_units, eps=spec.bn_epsilon, momentum=momentum)
        self.dropout = nn.Dropout(spec.dropout)
        self.gmp = _MaxOverTime()
        self.logits = nn.Linear(spec.dense_units, spec.num_classes)
        self._stack = [n for n in spec.layer_names()[1:] if n.startswith(("reshape", "datapoint", "conv"))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self._stack:
            x = getattr(self, name)(x)
        x = self.lstm(self.bilstm(x))
        fused = self.concat(x, self.attention(x))
        x = self.residual(fused, self.mha(fused))
        x = self.gmp(self.dropout(self.dense_bn(self.dense(x))))
        return self.logits(x)

    def neutral_tensors(self) -> dict[str, tuple[torch.Tensor, str | None]]:
        """{neutral key: (tensor, torch kernel layout)} for every weight of the spec."""
        out: dict[str, tuple[torch.Tensor, str | None]] = {}
        for i in range(1, len(self.spec.filters) + 1):
            conv = getattr(self, f"conv{i}")
            out[f"conv{i}/kernel"], out[f"conv{i}/bias"] = (conv.weight, "conv1d"), (conv.bias, None)
            out.update(bn_tensors(getattr(self, f"conv{i}_bn"), f"conv{i}_bn"))
        lstms = {"bilstm/forward_": self.bilstm.forward_lstm, "bilstm/backward_": self.bilstm.backward_lstm,
                 "lstm/": self.lstm}
        for prefix, lstm in lstms.items():
            for p in ("kernel", "recurrent_kernel", "bias"):
                out[prefix + p] = (getattr(lstm, p), None)
        for name, p in self.mha.named_parameters():
            out[f"mha/{name}"] = (p, None)
        out["dense/kernel"], out["dense/bias"] = (self.dense.weight, "dense"), (self.dense.bias, None)
        out.update(bn_tensors(self.dense_bn, "dense_bn"))
        out["logits/kernel"], out["logits/bias"] = (self.logits.weight, "dense"), (self.logits.bias, None)
        return out
