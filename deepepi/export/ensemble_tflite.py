"""`deepepi export --tflite ENSEMBLE.onnx`: the app's TFLite file of a Harrell-Davis ensemble.

The ensemble ONNX graph records its members (their ONNX files) and its default q. Each member's run
directory (beside its ONNX file) gives weights.npz, from which its Keras twin is built; the twins run
side by side in one Keras graph ending in the Harrell-Davis layer with the weights of that fixed q.
Before anything is written, the .tflite file runs in LiteRT and must equal the ensemble ONNX graph
(onnxruntime, default q) within 1e-5 on the usual self-check windows: a member whose run no longer
holds the weights the ensemble was built from fails there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from converters import app_meta
from converters.check import DeployResult, finish, self_check_windows
from deepepi.core.errors import ModelError
from deepepi.core.preprocessing import Preprocessing


def is_ensemble(path: str | Path) -> bool:
    """An ONNX file whose metadata says it is a `deepepi ensemble` graph."""
    from converters.contract import read_metadata
    from converters.session import load_onnx

    path = Path(path)
    return path.suffix == ".onnx" and path.is_file() and read_metadata(load_onnx(path)).get("framework") == "ensemble"


def _member_weights(recorded: str, ensemble: Path) -> Path:
    """weights.npz of the run holding a member's ONNX file (recorded path, as given or beside the ensemble)."""
    member = Path(recorded)
    if not member.is_absolute() and not member.exists():
        member = ensemble.parent / member
    weights = member.parent / "weights.npz"
    if not weights.is_file():
        raise ModelError(f"member {recorded}: no weights.npz beside it to build its Keras twin from "
                         f"(the ensemble's members must be run directories' exports)", source=str(ensemble))
    return weights


def _acc_sd_threshold(weights_files: list[Path]) -> float | None:
    """The members' shared accSdThreshold (their run configs); None (the app's default) when they differ."""
    from deepepi.core.config import load_config

    values = {load_config(w.parent / "config.json").processing.get("accSdThreshold")
              for w in weights_files if (w.parent / "config.json").is_file()}
    return values.pop() if len(values) == 1 else None


def export_tflite(path: str | Path, *, out: str | Path | None = None, seed: int = 0) -> DeployResult:
    """Convert an ensemble ONNX file to the app's .tflite (default: beside it, same stem), checked first."""
    from converters.contract import read_metadata
    from converters.ensemble import harrell_davis_weights
    from converters.session import load_onnx
    from deepepi.export.formats import FORMATS, app_part
    from deepepi.runs.resolve import build_twin
    from deepepi.runtimes import open_model

    path = Path(path)
    meta = read_metadata(load_onnx(path))
    fmt = FORMATS["tflite"].app
    converter = app_part(fmt, fmt.converter)
    runtime_cls = app_part(fmt, fmt.runtime)
    members = json.loads(meta["ensemble_members"])
    weights = [_member_weights(m["file"], path) for m in members]
    q, window = float(meta["hd_q_default"]), int(meta["window"])
    twins = []
    for i, file in enumerate(weights):
        model, spec = build_twin(file, "tensorflow")
        if spec.window != window:
            raise ModelError(f"member {members[i]['file']}: window {spec.window} differs from the ensemble's "
                             f"{window}", source=str(path))
        twins.append(_renamed(model, f"member{i}"))
    preprocessing = Preprocessing.from_dict(json.loads(meta["preprocessing"]))
    content = converter.convert_ensemble(twins, harrell_davis_weights(len(twins), q), window, preprocessing)
    sidecar = app_meta.build(app_meta.TFLITE, meta, window=window,
                             acc_sd_threshold_pct=_acc_sd_threshold(weights),
                             extra={"hd_q": q, "ensemble_members": len(twins)})
    reference = open_model(path).predict_proba
    target = Path(out) if out is not None else path.with_suffix(".tflite")
    return finish(content, target, sidecar, lambda data, side, where: runtime_cls(data, side, path=where),
                  reference, self_check_windows(window, seed), quantized=False)


def _renamed(model: Any, name: str) -> Any:
    """The member's Keras model under a name of its own (one graph cannot hold two models named alike)."""
    import keras

    return keras.Model(model.input, model.output, name=name)
