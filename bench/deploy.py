"""Benchmark: the deployment files (ONNX fp32/int8/fp16, LiteRT and ExecuTorch fp32/int8) against PyTorch eager.

One DeepEpi model (reference spec, window 750; seeded random weights, or a trained run of either
framework with --run; PyTorch eager runs a TensorFlow run's twin built from weights.npz) is exported
through the real converters (`deepepi export --onnx/--tflite/--pte [--quantize]`, calibrated on
the built-in dataset's training windows; quantised files are kept even where the export's 99 %
gate refuses them, and the table says so). Each file then runs in its own runtime through
``deepepi.runtimes.open_model(path, threads=--threads)`` (default 1), in one process:
- single-window latency p50/p99 (ms), raw milli-g in, probabilities out (adapter included), and
- batch throughput (windows/s) at --batch windows per call (the app files take one window per
  invoke, so their adapters loop), both timed in alternating blocks across formats so that load
  from other processes on a shared machine falls on every format alike;
- file size; argmax agreement and max abs difference with ONNX fp32 on the dataset's windows.
ExecuTorch int8 has two rows: the export's file (the fewest float32 leading convolutions that keep
99 % agreement, as the ONNX and LiteRT int8 files) and the network quantised whole (the file the
export wrote before; its gate column is its agreement with the float32 .pte on the same check windows).
Then the targets as ratios within this run: int8 p50 <= 0.65x fp32 p50 with agreement >= 99 %,
LiteRT fp32 p50 within 1.5x of ORT fp32, every format >= 3x faster than PyTorch eager.

    python bench/deploy.py [--run RUN_DIR] [--framework tensorflow|pytorch] [--repeats 400] [--rounds 20]
                           [--batch 256] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

WINDOW = 750


def interleaved(runners: dict[str, Callable[[], object]], repeats: int, rounds: int) -> dict[str, np.ndarray]:
    """Wall seconds per call for each runner, measured in ``rounds`` alternating blocks (after one
    untimed warm-up block each), so that load from other processes hits every runner alike."""
    per_block = max(1, repeats // rounds)
    for fn in runners.values():
        for _ in range(min(per_block, 10)):
            fn()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, fn in runners.items():
            for _ in range(per_block):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return {name: np.asarray(values) for name, values in times.items()}


def random_run(root: Path) -> Path:
    """A PyTorch run directory of the reference spec with seeded random weights (BN stats included)."""
    from deepepi.core.config import REPO_CONFIGS, load_config
    from deepepi.core.io import write_json
    from deepepi.models import torch_checkpoint, torch_weights
    from deepepi.models.deepepi_cnn import torch as deepepi_torch
    from deepepi.models.deepepi_cnn.spec import ArchSpec
    from deepepi.models.weights import save_weights

    cfg = load_config(REPO_CONFIGS / "nnConfig_deep_pytorch.json")
    spec = ArchSpec.from_config(cfg)
    rng = np.random.default_rng(0)
    weights = {}
    for key, shape in spec.weight_shapes().items():
        param = key.split("/")[1]
        if param == "kernel":
            value = rng.normal(0.0, np.sqrt(2.0 / np.prod(shape[:-1])), shape)
        elif param in ("gamma", "moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.normal(0.0, 0.1, shape)
        weights[key] = value.astype(np.float32)
    run = root / "run"
    run.mkdir()
    write_json(run / "config.json", cfg.to_dict())
    save_weights(run / "weights.npz", weights, spec)
    model = deepepi_torch.DeepEpiCnn(spec).eval()
    torch_weights.import_weights(model, spec, weights)
    torch_checkpoint.save_checkpoint(run / "model.pt", model, spec, cfg.to_dict())
    return run


def export_all(run: Path, out: Path, csv: Path, framework: str | None) -> tuple[dict[str, Path], dict[str, float]]:
    """Every deployment file of ``run`` under ``out``, through the exporters the CLI uses, and each
    quantised file's agreement on its export's check windows (2,048 windows, the run's validation
    windows first). The quantised files are written even where the export's gate (>= 99 % agreement)
    refuses them, so that they can be measured; the table says which ones `deepepi export` would refuse."""
    from deepepi.export.onnx_file import export_run
    from deepepi.export.app_files import export_app
    from deepepi.export.onnx_quantized import export_onnx_quantized

    files = {"ORT fp32": export_run(run, out=out / "model.onnx", framework=framework).path}
    results = {}
    for kind in ("int8", "fp16"):
        results[f"ORT {kind}"] = export_onnx_quantized(run, kind, out=out / f"model.{kind}.onnx", framework=framework,
                                                       calibration=csv, min_agreement=0.0)[1]
    files["LiteRT fp32"] = export_app(run, "tflite", out=out / "model.tflite").path
    results["LiteRT int8"] = export_app(run, "tflite", out=out / "model.int8.tflite", quantize="int8",
                                        calibration=csv, min_agreement=0.0)
    files["ExecuTorch (XNNPACK)"] = export_app(run, "pte", out=out / "model.pte").path
    results["ExecuTorch int8"] = export_app(run, "pte", out=out / "model.int8.pte", quantize="int8",
                                            calibration=csv, min_agreement=0.0)
    files.update({name: result.path for name, result in results.items()})
    agreement = {name: result.agreement for name, result in results.items()}
    whole = "ExecuTorch int8 (whole network)"
    files[whole], agreement[whole] = whole_network_pte(run, out / "model.int8-whole.pte", csv,
                                                       files["ExecuTorch (XNNPACK)"], files["ExecuTorch int8"])
    return files, agreement


def whole_network_pte(run: Path, out: Path, csv: Path, fp32: Path, like: Path) -> tuple[Path, float]:
    """The .pte int8 program quantised whole (no float32 convolution; the sidecar of ``like``) and its
    argmax agreement with the float32 program ``fp32`` on the export's check windows."""
    import shutil

    from converters.app_meta import sidecar_path
    from converters.pte import int8_program, program_logits
    from deepepi.core.io import write_bytes
    from deepepi.export.windows import quantisation_windows
    from deepepi.runs.resolve import framework_modules, model_for, resolve_run
    from deepepi.scoring.agreement import argmax_agreement

    resolved = resolve_run(run)
    model, spec, source = model_for(resolved, "pytorch", framework_modules("pytorch")[0], no_weights="no weights.npz")
    calibration, check = quantisation_windows(resolved, csv)
    scale = np.float32(source.preprocessing.scale)
    content = int8_program(model, spec, source.preprocessing, calibration * scale, 0)
    write_bytes(out, content)
    shutil.copyfile(sidecar_path(like), sidecar_path(out))
    float32 = program_logits(fp32.read_bytes(), check * scale)
    return out, argmax_agreement(program_logits(content, check * scale), float32)


def torch_eager(run: Path, threads: int) -> Callable[[np.ndarray], Any]:
    import torch

    from deepepi.runs.resolve import build_twin, resolve_run
    from deepepi.models.torch_checkpoint import load_checkpoint
    from deepepi.core.preprocessing import from_config

    torch.set_num_threads(threads)
    resolved = resolve_run(run)
    model = load_checkpoint(resolved.model_file)[0] if resolved.framework == "pytorch" \
        else build_twin(resolved.weights_file, "pytorch")[0]
    pre = from_config(resolved.config)

    def predict(raw: np.ndarray) -> Any:
        with torch.no_grad():
            return torch.softmax(model.eval()(torch.from_numpy(pre.apply(raw))), dim=-1).numpy()
    return predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None, help="trained run directory (default: seeded random weights)")
    parser.add_argument("--repeats", type=int, default=400, help="timed single-window calls per format")
    parser.add_argument("--rounds", type=int, default=20, help="alternating blocks the calls are split into")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--batch-rounds", type=int, default=5, help="timed batch calls per format")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--framework", choices=("tensorflow", "pytorch"), default=None,
                        help="whose ONNX graph the ORT rows use (default: the run's; the other is its twin)")
    parser.add_argument("--agreement-windows", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    from converters.contract import realistic_windows
    from deepepi.data.csvio import load_csv
    from deepepi.data.synth import default_dataset
    from deepepi.data.windows import make_windows
    from deepepi.runtimes import open_model

    csv = default_dataset()
    data = make_windows(load_csv(csv), preprocessing=None).X
    data = data[np.random.default_rng(0).permutation(len(data))[:args.agreement_windows]]
    raw = realistic_windows(max(args.batch, 1), WINDOW, seed=1)
    with tempfile.TemporaryDirectory(prefix="deepepi-bench-") as tmp:
        root = Path(tmp)
        run = args.run or random_run(root)
        files, calibration_agreement = export_all(run, root, csv, args.framework)
        runtimes = {name: open_model(path, threads=args.threads) for name, path in files.items()}
        predict = {name: runtime.predict_proba for name, runtime in runtimes.items()}
        predict["PyTorch eager"] = torch_eager(run, args.threads)
        single = interleaved({n: (lambda f=f: f(raw[:1])) for n, f in predict.items()},
                             args.repeats, args.rounds)
        batch = interleaved({n: (lambda f=f: f(raw[:args.batch])) for n, f in predict.items()},
                            args.batch_rounds, args.batch_rounds)
        rows: dict[str, dict[str, Any]] = {
            name: {"p50_ms": 1e3 * float(np.median(single[name])),
                   "p99_ms": 1e3 * float(np.percentile(single[name], 99)),
                   "batch_windows_per_s": args.batch / float(np.median(batch[name]))}
            for name in predict}
        reference = runtimes["ORT fp32"].predict_proba(data)
        for name, runtime in runtimes.items():
            probs = runtime.predict_proba(data)
            if name in calibration_agreement:
                rows[name]["export_gate_agreement"] = calibration_agreement[name]
            rows[name].update(size_bytes=files[name].stat().st_size,
                              agreement=float(np.mean(probs.argmax(1) == reference.argmax(1))),
                              max_abs_diff=float(np.max(np.abs(probs - reference))))
        predicted = np.bincount(reference.argmax(1), minlength=2).tolist()

    fp32 = rows["ORT fp32"]["p50_ms"]
    eager = rows["PyTorch eager"]["p50_ms"]
    targets = {
        "ORT int8 p50 / ORT fp32 p50 (<= 0.65)": rows["ORT int8"]["p50_ms"] / fp32,
        "ORT int8 agreement (>= 0.99)": rows["ORT int8"]["agreement"],
        "LiteRT int8 agreement (>= 0.99)": rows["LiteRT int8"]["agreement"],
        "ExecuTorch int8 agreement (>= 0.99)": rows["ExecuTorch int8"]["agreement"],
        "ExecuTorch int8 p50 / ExecuTorch fp32 p50":
            rows["ExecuTorch int8"]["p50_ms"] / rows["ExecuTorch (XNNPACK)"]["p50_ms"],
        "LiteRT fp32 p50 / ORT fp32 p50 (<= 1.5)": rows["LiteRT fp32"]["p50_ms"] / fp32,
    }
    targets.update({f"PyTorch eager p50 / {name} p50 (>= 3)": eager / rows[name]["p50_ms"] for name in files})
    print(f"# deepepi deploy benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, threads {args.threads}, "
          f"model {'trained run ' + str(args.run) if args.run else 'reference spec, seeded random weights'}, "
          f"ONNX graph of {args.framework or 'its own framework'}, "
          f"agreement on {len(data)} built-in dataset windows (ORT fp32 predicts classes {predicted})")
    print("\n| format | p50 ms | p99 ms | batch windows/s | size bytes | agreement vs ORT fp32 | max abs diff "
          "| export gate (agreement on its check windows) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        gate = r.get("export_gate_agreement")
        verdict = "-" if gate is None else f"{'pass' if gate >= 0.99 else 'REFUSED'} ({gate:.4f})"
        extra = (f"{r['size_bytes']} | {r['agreement']:.4f} | {r['max_abs_diff']:.2e} | {verdict}" if "size_bytes" in r
                 else "- | - | - | -")
        print(f"| {name} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['batch_windows_per_s']:.0f} | {extra} |")
    print("\n| target | value |\n|---|---|")
    for name, value in targets.items():
        print(f"| {name} | {value:.3f} |")
    if args.json:
        from deepepi.core.io import write_json

        write_json(args.json, {"rows": rows, "targets": targets, "threads": args.threads})


if __name__ == "__main__":
    main()
