"""`deepepi prove-trainers`: the Keras and PyTorch trainers are one algorithm, on the user's config and data.

From one initial state (Keras's seeded weights, copied into PyTorch) both frameworks train N steps
(default 50) in float64 on one batch stream: the config's own data preparation (augmentation,
balancing), its plan's stream (``plan.make_stream``: shuffled or balanced batches, the last partial
batch included), its optimiser (Adam/AdamW with ``train.optim``'s settings), its schedule (the
three-phase schedule in step mode) and its dropout, whose masks both draw from one numpy stream
(``train.masks``). After steps 1, 10 and N the two are compared: trainable weights, BatchNorm moving
statistics, Adam's moments and step count, and eval-mode softmax on held-out windows. In float64
rounding is ~1e-16, so any algorithmic difference shows far above the tolerance (1e-6).

Every training-relevant config key is named in ``KEY_COVERAGE``: proved (it acts within the N steps,
in both frameworks), shared (framework-free code both trainers call decides it before a step, or
between evaluations, from figures this proof shows equal), or no effect on training. A key whose
effect cannot be reproduced in both frameworks is refused in one line (``refusal``).

``Perturb`` plants one difference in one framework's training: it exists for the mutation test
(tests/train/test_prove_mutations.py), which shows each planted difference makes the proof FAIL.
Needs both frameworks.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from deepepi.core.config import Config, load_config
from deepepi.core.errors import ConfigError
from deepepi.core.io import write_json
from deepepi.scoring.agreement import argmax_agreement
from deepepi.train.masks import MaskFeed
from deepepi.train.optim import AdamSettings
from deepepi.train.plan import make_stream

DEFAULT_STEPS = 50
FIRST_CHECKS = (1, 10)  # and N
HELD_OUT = 256  # held-out windows whose softmax is compared
DTYPES = ("float64", "float32")
TOLERANCE = {"float64": 1e-6}  # float32: drift for information, no verdict
FRAMEWORKS = ("tensorflow", "pytorch")
REPORT = "prove_trainers.json"
Echo = Callable[[str], Any]

PROVED, SHARED, NO_EFFECT, UNUSED = "proved", "shared", "no effect", "unused by this config"
_PROVED_MODEL = ("modelClass", "batchSize", "nLayers", "filters", "strides", "kernelSize", "denseWidths",
                 "numClasses", "dims", "convDropout", "denseDropout", "bnEpsilon", "bnMomentum", "analysisSamp",
                 "specSamp", "specStep", "amberRowHidden", "amberColHidden", "sampleFreq", "bufferSeconds",
                 "lrStart", "useAdamW", "adamwBeta1", "adamwBeta2", "weightDecay", "useLrSchedule", "lrPeak",
                 "lrMainEnd", "warmupSteps", "mainSteps", "cooldownSteps", "useBalancedBatches")
_SHARED_MODEL = ("epochs", "totalTrainingSteps", "evalEverySteps",  # train.plan: which steps, when to validate
                 "modelSelectionMetric", "saveBestMinSensitivity", "saveBestMaxFpr", "fBeta",  # train.selection
                 "saveBestOnFarReduction", "saveBestOnSensitivityTolerance", "saveBestOnBothImprovement",
                 "earlyStoppingPatience", "lrFactor", "lrPatience", "lrMin",  # between evaluations, on val_loss
                 "alarmBudgetPer24h")  # scoring.operating: the threshold, chosen after training on val softmax
_NO_EFFECT_MODEL = ("framework", "modelType", "modelFname", "trainingVerbosity", "deterministic")
#: Every modelConfig key and what the proof says about it (dataProcessing keys are all SHARED: numpy data
#: preparation both frameworks receive as the same arrays, and the proof trains on its output; the
#: Decision's accSdThreshold, warnTime and alarmTime act after training only, in the threshold rule
#: scoring.operating applies to the validation softmax, framework-free).
KEY_COVERAGE: dict[str, str] = {**{k: PROVED for k in _PROVED_MODEL}, **{k: SHARED for k in _SHARED_MODEL},
                                **{k: NO_EFFECT for k in _NO_EFFECT_MODEL}, "randomSeed": PROVED,
                                "precision": PROVED, "compile": PROVED}
SHARED_NOTE = ("shared: decided by framework-free code both trainers call (train.plan, train.selection, "
               "scoring.metrics) or at evaluations, from the validation softmax this proof compares; "
               "ReduceLROnPlateau and early stopping act between evaluations, so N steps do not exercise them")


def refusal(cfg: Config) -> str | None:
    """The one line saying why ``cfg`` cannot be proved, or None. Keys whose effect is not the same
    algorithm in both frameworks are refused rather than skipped."""
    from deepepi.models.registry import lookup

    m = cfg.model
    if m["precision"] != "fp32":
        return (f"modelConfig.precision {m['precision']!r}: mixed precision rounds differently in each "
                "framework (CUDA autocast vs a Keras mixed policy); prove-trainers proves fp32 training, set 'fp32'")
    if m["compile"]:
        return ("modelConfig.compile true: torch.compile exists in PyTorch only; prove-trainers proves the "
                "eager step both frameworks share, set false")
    if lookup(str(m["modelClass"])) is None:
        return (f"modelConfig.modelClass {m['modelClass']!r}: an imported class has no counterpart in the "
                "other framework; prove-trainers proves the registered models (deepepi model list)")
    return None


@dataclass(frozen=True)
class Perturb:
    """One planted difference in one framework's training (test-only; the mutation test)."""

    lr_factor: float = 1.0  # learning rates (lrStart, lrPeak, lrMainEnd) times this
    epsilon: float | None = None  # Adam epsilon instead of 1e-7
    bn_momentum: float | None = None  # BatchNorm momentum (Keras convention) instead of the config's
    class_weight: dict[int, float] | None = None  # TensorFlow only: a class-weighted loss
    aug_seed: int | None = None  # augmentation drawn with this seed (same events)
    batch_shift: int = 0  # the batch stream starts this many batches later
    drop_partial: bool = False  # the last partial batch of each pass is skipped
    l2_decay: bool = False  # PyTorch only: weight decay added to the gradient (L2) instead of decoupled
    mask_seed: int | None = None  # dropout masks from this seed

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self).items() if v != getattr(Perturb(), k)) or "none"


class _Altered:
    """A batch stream with batches skipped (partial ones) or shifted: ``steps`` as the stream's."""

    def __init__(self, stream: Any, shift: int, drop_partial: bool) -> None:
        self.stream, self.shift, self.drop_partial = stream, shift, drop_partial

    def _all(self) -> Iterator[np.ndarray]:
        epoch = 0
        while True:
            for batch in self.stream.batches(epoch):
                if not (self.drop_partial and len(batch) < self.stream.batch_size):
                    yield batch
            epoch += 1

    def steps(self, start: int, stop: int) -> Iterator[np.ndarray]:
        for i, batch in enumerate(self._all()):
            if i >= stop + self.shift:
                return
            if i >= start + self.shift:
                yield batch


@dataclass(frozen=True)
class Check:
    """The two frameworks after ``step`` steps (max abs differences; Adam's moments relative to their largest)."""

    step: int
    weights: float
    bn_stats: float
    optimizer: float
    softmax: float
    agreement: float
    weight_change: float  # how far training moved the TensorFlow weights (the scale of the above)
    passed: bool | None  # None: float32, information only

    @property
    def worst(self) -> float:
        return max(self.weights, self.bn_stats, self.optimizer, self.softmax)


@dataclass
class Proof:
    config: str
    data: str
    model: str
    dtype: str
    steps: int
    mode: str  # epoch | step
    dropout: dict[str, float]
    checks: list[Check]
    tolerance: float | None
    keys: dict[str, list[str]]
    perturb: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def passed(self) -> bool | None:
        if self.tolerance is None:
            return None
        return all(c.passed for c in self.checks)

    @property
    def first_failure(self) -> int | None:
        return next((c.step for c in self.checks if c.passed is False), None)

    @property
    def max_weight_diff(self) -> float:
        return max(c.weights for c in self.checks)

    @property
    def dropout_on(self) -> bool:
        return any(rate > 0 for rate in self.dropout.values())

    def verdict(self) -> str:
        word = {True: "PASS", False: "FAIL", None: "INFO"}[self.passed]
        drop = "dropout on" if self.dropout_on else "no dropout in this model/config"
        return (f"trainers: {word} ({self.steps} {self.dtype} steps, max |dW| {self.max_weight_diff:.1e}, "
                f"{drop}; {self.model}, {self.mode} mode)")

    def table(self) -> str:
        tol = f"tolerance {self.tolerance:g}" if self.tolerance is not None else "float32: information only"
        rows = [f"| step | weights | BN stats | Adam m, v (rel) | softmax | argmax agree | moved | verdict |  ({tol})",
                "|---:|---:|---:|---:|---:|---:|---:|---|"]
        for c in self.checks:
            word = {True: "pass", False: "FAIL", None: "info"}[c.passed]
            rows.append(f"| {c.step} | {c.weights:.1e} | {c.bn_stats:.1e} | {c.optimizer:.1e} | {c.softmax:.1e} "
                        f"| {c.agreement:.4f} | {c.weight_change:.1e} | {word} |")
        return "\n".join(rows)

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "checks"},
                "checks": [asdict(c) for c in self.checks], "passed": self.passed,
                "first_failure": self.first_failure, "max_weight_diff": self.max_weight_diff,
                "dropout_on": self.dropout_on, "verdict": self.verdict()}


_STEP_MODE_ONLY = ("lrPeak", "lrMainEnd", "warmupSteps", "mainSteps", "cooldownSteps", "totalTrainingSteps",
                   "evalEverySteps")
_EPOCH_MODE_ONLY = ("epochs", "lrFactor", "lrPatience", "lrMin")
_ADAMW_ONLY = ("adamwBeta1", "adamwBeta2", "weightDecay")
# The architecture keys each model reads (its spec's from_config); the others' are unused by it.
_ARCH_KEYS = {"deepEpiCnn": ("nLayers", "filters", "strides", "kernelSize", "denseWidths", "convDropout",
                             "denseDropout"),
              "specCnn": ("nLayers", "filters", "analysisSamp", "specSamp", "specStep"),
              "amber": ("filters", "amberRowHidden", "amberColHidden")}


def covered_keys(cfg: Config) -> dict[str, list[str]]:
    """The config's training keys by what the proof says of them (the command lists them). Keys the
    config's own mode does not read (step-mode schedule keys in epoch mode, AdamW's in Adam, another
    architecture's) are unused."""
    from deepepi.models.registry import lookup

    m = cfg.model
    unused = set(_EPOCH_MODE_ONLY if m["useLrSchedule"] else _STEP_MODE_ONLY)
    unused |= set() if m["useAdamW"] else set(_ADAMW_ONLY)
    found = lookup(str(m["modelClass"]))
    if found is not None and found[0].name in _ARCH_KEYS:
        unused |= {k for keys in _ARCH_KEYS.values() for k in keys} - set(_ARCH_KEYS[found[0].name])
    out: dict[str, list[str]] = {PROVED: [], SHARED: [], NO_EFFECT: [], UNUSED: []}
    for key in m:
        out[UNUSED if key in unused else KEY_COVERAGE[key]].append(f"modelConfig.{key}")
    out[PROVED].append("randomSeed")
    out[SHARED] += [f"dataProcessing.{k}" for k in cfg.processing]
    return out


def _real_split(data: Any, csv: Path) -> Any:
    """The events of ``data``'s split (augmented copies have new ids), to re-prepare it with another seed."""
    import pandas as pd

    from deepepi.data.dataset import EventSplit

    real = set(pd.read_csv(csv, usecols=["eventId"])["eventId"].astype(int))
    ids = (tuple(sorted(int(e) for e in np.unique(part.event_id) if int(e) in real))
           for part in (data.train, data.val, data.test))
    return EventSplit(*ids, note="the proof's split", val_source="proof's validation events")


def _diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray], keys: Sequence[str]) -> float:
    """Max abs difference over ``keys`` (inf where not finite)."""
    worst = 0.0
    for k in keys:
        d = float(np.max(np.abs(a[k] - b[k]))) if a[k].size else 0.0
        worst = max(worst, d if np.isfinite(d) else np.inf)
    return worst


def _moments_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """Adam's m and v: max abs difference relative to the slot's largest value (a bias followed by
    BatchNorm has a zero gradient, so its moments are rounding noise and no scale of their own)."""
    worst = 0.0
    for slot in ("m:", "v:"):
        keys = [k for k in a if k.startswith(slot)]
        scale = max((float(np.max(np.abs(a[k]))) for k in keys if a[k].size), default=0.0)
        worst = max(worst, _diff(a, b, keys) / max(scale, 1e-300))
    return worst if float(a["iterations"]) == float(b["iterations"]) else np.inf


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def prove(config: str | Path | Config, data: str | Path, *, steps: int = DEFAULT_STEPS, dtype: str = "float64",
          checkpoints: Sequence[int] | None = None, perturb: dict[str, Perturb] | None = None,
          held_out: int = HELD_OUT) -> Proof:
    """Train both frameworks ``steps`` steps in lockstep on ``config`` and ``data``; compare at
    ``checkpoints`` (default 1, 10, steps). ``perturb`` ({framework: Perturb}) is for the mutation test."""
    t0 = time.perf_counter()
    if dtype not in DTYPES:
        raise ConfigError(f"--dtype: got {dtype!r}, expected one of {', '.join(DTYPES)}")
    cfg = config if isinstance(config, Config) else load_config(config, warn=("keys",))
    why = refusal(cfg)
    if why:
        raise ConfigError(why, source=cfg.source)
    from deepepi.core.extras import require
    from deepepi.data.dataset import prepare
    from deepepi.models.registry import spec_from_config

    torch = require("torch", extra="torch", what="deepepi prove-trainers", needs="both frameworks")
    require("tensorflow", extra="tf", what="deepepi prove-trainers", needs="both frameworks")
    from deepepi.train import keras_lockstep as kl
    from deepepi.train import torch_lockstep as tl
    perturb = perturb or {}
    m, seed, csv = cfg.model, cfg.seed, Path(data)
    spec = spec_from_config(cfg)
    prepared = prepare(cfg, csv)
    held = (prepared.test.X if len(prepared.test) else prepared.val.X)[:held_out].astype(dtype)
    start = kl.seeded_weights(spec, seed)

    def side(framework: str) -> dict[str, Any]:
        p = perturb.get(framework, Perturb())
        mm = dict(m)
        if p.lr_factor != 1.0:
            mm.update({k: float(m[k]) * p.lr_factor for k in ("lrStart", "lrPeak", "lrMainEnd")})
        sp = replace(spec, bn_momentum=p.bn_momentum) if p.bn_momentum is not None else spec
        train = prepared.train
        if p.aug_seed is not None:
            other = Config({**cfg.to_dict(), "randomSeed": p.aug_seed}, source=cfg.source, given=cfg.given)
            train = prepare(other, csv, _real_split(prepared, csv)).train
        stream: Any = make_stream(mm, train.y, seed)
        if p.batch_shift or p.drop_partial:
            stream = _Altered(stream, p.batch_shift, p.drop_partial)
        adam = AdamSettings.from_model_config(mm)
        if p.epsilon is not None:
            adam = replace(adam, epsilon=p.epsilon)
        feed = MaskFeed(seed if p.mask_seed is None else p.mask_seed)
        return {"m": mm, "spec": sp, "x": train.X.astype(dtype), "y": train.y, "stream": stream, "adam": adam,
                "feed": feed, "p": p}

    tf_side, pt_side = side("tensorflow"), side("pytorch")
    k_model = kl.lockstep_model(tf_side["spec"], start, tf_side["m"], dtype, tf_side["feed"], tf_side["adam"])
    t_model = tl.lockstep_model(pt_side["spec"], start, dtype, pt_side["feed"])
    start64 = {k: np.asarray(v, dtype=np.float64) for k, v in start.items()}
    marks = sorted(set(checkpoints or (*[c for c in FIRST_CHECKS if c < steps], steps)))
    tol = TOLERANCE.get(dtype)
    stepper, done, checks = None, 0, []
    for stop in marks:
        kl.train_steps(k_model, tf_side["m"], tf_side["x"], tf_side["y"], tf_side["stream"], done, stop,
                       tf_side["feed"], tf_side["p"].class_weight)
        stepper = tl.train_steps(t_model, pt_side["m"], pt_side["x"], pt_side["y"], pt_side["stream"], done, stop,
                                 stepper, pt_side["feed"], pt_side["adam"], pt_side["p"].l2_decay)
        done = stop
        wa, wb = kl.neutral(k_model, spec), tl.neutral(t_model, spec)
        oa, ob = kl.optimizer_state(k_model, spec), tl.optimizer_state(t_model, spec, stepper)
        pa = _softmax(np.asarray(k_model.predict(held, batch_size=512, verbose=0), dtype=np.float64))
        t_model.eval()
        with torch.no_grad():
            pb = _softmax(t_model(torch.from_numpy(held)).numpy().astype(np.float64))
        stats = [k for k in wa if k.rsplit("/", 1)[-1].startswith("moving_")]
        trainable = [k for k in wa if k not in stats]
        check = Check(step=stop, weights=_diff(wa, wb, trainable), bn_stats=_diff(wa, wb, stats),
                      optimizer=_moments_diff(oa, ob), softmax=float(np.max(np.abs(pa - pb))),
                      agreement=argmax_agreement(pa, pb), weight_change=_diff(wa, start64, trainable),
                      passed=None)
        checks.append(replace(check, passed=None if tol is None else bool(check.worst <= tol)))
    dropout = {k: float(m[k]) for k in ("convDropout", "denseDropout") if k in m}
    if hasattr(spec, "dropout"):
        dropout = {"dropout (architecture)": float(spec.dropout)}
    return Proof(config=cfg.source, data=str(csv), model=str(spec.model), dtype=dtype, steps=steps,
                 mode="step" if m["useLrSchedule"] else "epoch", dropout=dropout, checks=checks,
                 tolerance=tol, keys=covered_keys(cfg),
                 perturb={fw: p.describe() for fw, p in perturb.items()},
                 seconds=time.perf_counter() - t0)


def run(config: str | Path, data: str | Path, *, steps: int = DEFAULT_STEPS, dtype: str = "float64",
        out: str | Path | None = None, float32_info: bool = True, echo: Echo = print) -> Proof:
    """The command: the proof in ``dtype``, its table and key list, the float32 drift for information
    (``float32_info``, float64 runs only) and OUT/prove_trainers.json. Returns the proof."""
    proof = prove(config, data, steps=steps, dtype=dtype)
    echo(proof.table())
    info = prove(config, data, steps=steps, dtype="float32") if float32_info and dtype == "float64" else None
    if info is not None:
        worst = info.checks[-1]
        echo(f"float32 (information): after {info.steps} steps max |dW| {worst.weights:.1e}, softmax "
             f"{worst.softmax:.1e}, argmax agreement {worst.agreement:.4f} (rounding alone; see docs/PERFORMANCE.md)")
    echo(f"keys proved ({len(proof.keys[PROVED])}): "
         + ", ".join(k.removeprefix("modelConfig.") for k in proof.keys[PROVED]))
    echo(f"keys shared ({len(proof.keys[SHARED])}, {SHARED_NOTE}): "
         + ", ".join(k.split(".")[-1] for k in proof.keys[SHARED]))
    echo("keys without effect on training: " + ", ".join(k.split(".")[-1] for k in proof.keys[NO_EFFECT])
         + "; unused by this config: " + (", ".join(k.split(".")[-1] for k in proof.keys[UNUSED]) or "none"))
    echo(proof.verdict() + f" [{proof.seconds:.0f} s]")
    if out is not None:
        report = {**proof.to_dict(), "float32_info": info.to_dict() if info else None}
        path = Path(out) / REPORT
        write_json(path, report)
        echo(f"report: {path}")
    return proof
