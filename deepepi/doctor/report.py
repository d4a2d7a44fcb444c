"""`deepepi doctor`: what is installed, which GPUs each framework sees, and what to fix. Never fails.

Versions come from package metadata (nothing imported). onnxruntime is imported here (it is a core
dependency); PyTorch and TensorFlow are probed in child processes (`deepepi.doctor.probe_torch`,
`deepepi.doctor.probe_tensorflow`), in parallel and with a timeout, so that a framework that hangs or
aborts while loading CUDA is reported instead of taking doctor down with it. The report is one
dict (`--json` prints it for bug reports); `render` turns it into one screen.
"""

from __future__ import annotations

import configparser
import importlib.metadata as metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import deepepi
from deepepi.core.config import DEFAULT_CONFIG, REPO_CONFIGS, load_config
from deepepi.core.errors import DeepEpiError
from deepepi.core.quiet import split_native_lines

GUIDE = "docs/MIGRATING.md"
# Label -> distributions that provide it (first installed wins).
PACKAGES: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy",), "scipy": ("scipy",), "pandas": ("pandas",), "scikit-learn": ("scikit-learn",),
    "imbalanced-learn": ("imbalanced-learn",), "click": ("click",), "onnx": ("onnx",),
    "onnxscript": ("onnxscript",), "torch": ("torch",),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tf-nightly"),
    "keras": ("keras",), "tf2onnx": ("tf2onnx",), "timescoring": ("timescoring",),
    "ai-edge-litert": ("ai-edge-litert",), "executorch": ("executorch",),
}
# Every distribution that installs the `onnxruntime` module; two of them overwrite each other.
ONNXRUNTIME_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml",
                             "onnxruntime-openvino", "onnxruntime-qnn", "onnxruntime-rocm",
                             "onnxruntime-training")
# Framework -> (module, probe module run in a child).
FRAMEWORKS = {"torch": ("torch", "deepepi.doctor.probe_torch"),
              "tensorflow": ("tensorflow", "deepepi.doctor.probe_tensorflow")}
# Extra -> the commands it enables ('deepepi ' omitted), each with what it adds.
EXTRA_COMMANDS: dict[str, tuple[tuple[str, str], ...]] = {
    "torch": (("train --framework pytorch", "train PyTorch models"),
              ("export --onnx", "export PyTorch runs to ONNX"),
              ("model summary", "the PyTorch layer table"),
              ("evaluate", "evaluate .pt files and PyTorch run directories")),
    "tf": (("train --framework tensorflow", "train Keras models"),
           ("export --onnx", "export TensorFlow runs to ONNX (tf2onnx)"),
           ("model summary", "the Keras layer table"),
           ("evaluate", "evaluate .keras files and TensorFlow run directories")),
    "all": (("pipeline", "train, export and verify both frameworks"),
            ("export --onnx --framework", "export a run's twin in the other framework")),
    "deploy": (("export --tflite", "LiteRT models for the app"),
               ("export --pte", "ExecuTorch models for the app"),
               ("predict", "run .tflite and .pte models, as the app streams them")),
    "test": (),
    "dev": (),
}
ENVIRONMENT = ("CUDA_VISIBLE_DEVICES", "CUDA_HOME", "OMP_NUM_THREADS", "TF_ENABLE_ONEDNN_OPTS",
               "TF_FORCE_GPU_ALLOW_GROWTH", "XLA_FLAGS", "PYTORCH_CUDA_ALLOC_CONF")
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def packages() -> dict[str, str | None]:
    """Installed version per label, None when missing (metadata only, nothing is imported)."""
    found: dict[str, str | None] = {}
    for label, distributions in PACKAGES.items():
        found[label] = next((v for v in map(_version, distributions) if v is not None), None)
    return found


def onnxruntime_info() -> dict[str, Any]:
    """Which onnxruntime distributions are installed, its version and its compiled-in providers."""
    installed = {d: v for d in ONNXRUNTIME_DISTRIBUTIONS if (v := _version(d)) is not None}
    info: dict[str, Any] = {"distributions": installed, "version": None, "providers": [], "error": None}
    try:
        import onnxruntime

        info["version"] = onnxruntime.__version__
        info["providers"] = list(onnxruntime.get_available_providers())
    except Exception as exc:  # noqa: BLE001 - a broken install is what doctor reports
        info["error"] = f"{type(exc).__name__}: {exc}"
    return info


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(deepepi.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["TF_CPP_MIN_LOG_LEVEL"] = "0"  # doctor shows everything the framework says on start-up
    return env


def _failure(returncode: int, stderr: str) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"the import was killed by {name}"
    kept = [line.strip() for line in split_native_lines(stderr)[0] if line.strip()]
    return kept[-1] if kept else f"exited with code {returncode}"


def probe_frameworks(timeout: float) -> dict[str, dict[str, Any]]:
    """Run each installed framework's probe in its own child, all at once; never raises."""
    started: dict[str, tuple[subprocess.Popen[str], float]] = {}
    results: dict[str, dict[str, Any]] = {}
    for name, (module, probe) in FRAMEWORKS.items():
        if importlib.util.find_spec(module) is None:
            results[name] = {"installed": False}
            continue
        proc = subprocess.Popen([sys.executable, "-m", probe], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=_child_env())
        started[name] = (proc, time.monotonic())
    deadline = time.monotonic() + timeout
    for name, (proc, t0) in started.items():
        result: dict[str, Any] = {"installed": True, "error": None, "startup_lines": []}
        try:
            out, err = proc.communicate(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            result["error"] = f"no answer within {timeout:g} s (killed)"
        result["seconds"] = round(time.monotonic() - t0, 2)
        result["startup_lines"] = [line.rstrip("\n") for line in split_native_lines(err)[1]]
        if result["error"] is None and proc.returncode != 0:
            result["error"] = _failure(proc.returncode, err)
            result["stderr_tail"] = [line.rstrip("\n") for line in err.splitlines(keepends=True)[-20:]]
        if result["error"] is None:
            try:
                result.update(json.loads(out.strip().splitlines()[-1]))
            except (json.JSONDecodeError, IndexError):
                result["error"] = f"unreadable probe output: {out.strip()[:200]!r}"
        results[name] = result
    return results


def _extra_requirements() -> dict[str, list[str]]:
    """Extra -> distribution names: from setup.cfg in a source checkout, else from package metadata."""
    setup_cfg = REPO_CONFIGS.parent / "setup.cfg"
    extras: dict[str, list[str]] = {}
    if setup_cfg.is_file():
        parser = configparser.ConfigParser()
        parser.read(setup_cfg, encoding="utf-8")
        if parser.has_section("options.extras_require"):
            for extra, value in parser.items("options.extras_require"):
                extras[extra] = [m.group(1) for line in value.splitlines()
                                 if (m := _REQUIREMENT_NAME.match(line.split(";")[0]))]
        return extras
    try:
        requirements = metadata.requires("deepepi") or []
    except metadata.PackageNotFoundError:
        return extras
    for requirement in requirements:
        marker = re.search(r"""extra\s*==\s*["']([^"']+)["']""", requirement)
        name = _REQUIREMENT_NAME.match(requirement)
        if marker and name:
            extras.setdefault(marker.group(1), []).append(name.group(1))
    return extras


def extras() -> dict[str, dict[str, Any]]:
    """Per extra: installed or not, what is missing, and the commands it enables."""
    report: dict[str, dict[str, Any]] = {}
    for extra, names in _extra_requirements().items():
        missing = [n for n in names if _version(n) is None]
        report[extra] = {"installed": not missing, "missing": missing,
                         "commands": [f"deepepi {c}: {what}" for c, what in EXTRA_COMMANDS.get(extra, ())]}
    return report


def configs() -> dict[str, Any]:
    """Does configs/ resolve, and does every config in it load (framework detected)?"""
    files: dict[str, dict[str, Any]] = {}
    if REPO_CONFIGS.is_dir():
        for path in sorted(REPO_CONFIGS.glob("*.json")):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    files[path.name] = {"framework": load_config(path).framework, "error": None}
            except DeepEpiError as err:
                files[path.name] = {"framework": None, "error": str(err)}
    return {"dir": str(REPO_CONFIGS), "found": REPO_CONFIGS.is_dir(),
            "default": str(DEFAULT_CONFIG) if DEFAULT_CONFIG.is_file() else None, "files": files}


def nvidia_driver() -> str | None:
    """The NVIDIA kernel driver's version line, if this machine has one."""
    try:
        line = Path("/proc/driver/nvidia/version").read_text(encoding="utf-8").splitlines()[0]
    except (OSError, IndexError):
        return "present (nvidia-smi on PATH)" if shutil.which("nvidia-smi") else None
    match = re.search(r"Kernel Module\s+(\S+)", line)
    return match.group(1) if match else line.strip()


def _problem(what: str, fix: str, see: str) -> dict[str, str]:
    return {"what": what, "fix": fix, "see": f"{GUIDE}#{see}"}


def problems(report: dict[str, Any]) -> list[dict[str, str]]:
    """What is wrong with this installation, each with a fix and the guide section that explains it."""
    found: list[dict[str, str]] = []
    ort = report["onnxruntime"]
    if len(ort["distributions"]) > 1:
        names = " ".join(ort["distributions"])
        found.append(_problem(f"{', '.join(ort['distributions'])} are all installed; they write the same "
                              "onnxruntime module, so one overwrote the other",
                              f"pip uninstall -y {names}, then install one (onnxruntime-gpu on Linux x86_64)",
                              "onnxruntime-gpu-or-onnxruntime"))
    if ort["error"]:
        found.append(_problem(f"onnxruntime cannot be imported ({ort['error']})",
                              "reinstall onnxruntime-gpu (Linux x86_64) or onnxruntime, not both",
                              "onnxruntime-gpu-or-onnxruntime"))
    fw = report["frameworks"]
    if not any(f["installed"] for f in fw.values()):
        found.append(_problem("neither PyTorch nor TensorFlow is installed: train, export and pipeline "
                              "cannot run", "pip install -e '.[torch]' (or '.[tf]', '.[all]')", "install"))
    for name, f in fw.items():
        if f["installed"] and f["error"]:
            found.append(_problem(f"{name} is installed but its probe failed: {f['error']}",
                                  f"`deepepi doctor --json` shows its last lines (stderr_tail); "
                                  f"python -c 'import {FRAMEWORKS[name][0]}' shows all", "messages-you-may-see"))
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1")
    if report["machine"]["nvidia_driver"] and not hidden:
        torch_ = fw.get("torch", {})
        if torch_.get("installed") and not torch_.get("error") and not torch_.get("cuda_build"):
            found.append(_problem(f"an NVIDIA driver is present but torch {torch_.get('version')} is a "
                                  "CPU-only build", "install the CUDA build of torch (without "
                                  "-c constraints-cpu.txt)", "gpu-setup"))
        elif torch_.get("cuda_build") and not torch_.get("gpus"):
            found.append(_problem(f"torch is a CUDA {torch_['cuda_build']} build but sees no GPU",
                                  "check nvidia-smi and that the driver supports that CUDA version",
                                  "gpu-setup"))
        tf_ = fw.get("tensorflow", {})
        if tf_.get("installed") and not tf_.get("error") and not tf_.get("gpus"):
            found.append(_problem("TensorFlow sees no GPU although an NVIDIA driver is present",
                                  "pip install 'tensorflow[and-cuda]' (TensorFlow brings its own CUDA "
                                  "libraries); `deepepi doctor --json` lists its start-up lines", "gpu-setup"))
    elif report["machine"]["nvidia_driver"] and hidden:
        found.append(_problem(f"CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']!r} hides every GPU",
                              "unset CUDA_VISIBLE_DEVICES to use the GPUs", "gpu-setup"))
    cfg = report["configs"]
    for name, entry in cfg["files"].items():
        if entry["error"]:
            found.append(_problem(f"configs/{name} does not load: {entry['error']}",
                                  "fix or remove that file", "bringing-your-config"))
    return found


def collect(*, timeout: float = 60.0) -> dict[str, Any]:
    """The whole report (every key is always present; missing things are None, False or empty)."""
    t0 = time.monotonic()
    report: dict[str, Any] = {
        "deepepi": deepepi.__version__,
        "python": {"version": platform.python_version(), "executable": sys.executable,
                   "implementation": platform.python_implementation()},
        "machine": {"system": platform.system(), "arch": platform.machine(), "cpus": os.cpu_count(),
                    "nvidia_driver": nvidia_driver()},
        "packages": packages(),
        "onnxruntime": onnxruntime_info(),
        "frameworks": probe_frameworks(timeout),
        "extras": extras(),
        "configs": configs(),
        "environment": {k: os.environ.get(k) for k in ENVIRONMENT},
    }
    report["problems"] = problems(report)
    report["seconds"] = round(time.monotonic() - t0, 2)
    return report


def _gpus(entry: dict[str, Any]) -> str:
    gpus = entry.get("gpus") or []
    return ", ".join(f"{g['name']} ({g.get('capability') or '?'})" for g in gpus) if gpus else "none"


def _framework_line(label: str, entry: dict[str, Any], extra: str, note: str = "") -> str:
    if not entry["installed"]:
        return f"{label:<12} not installed (pip install -e '.[{extra}]')"
    if entry["error"]:
        return f"{label:<12} BROKEN: {entry['error']}"
    build = f"CUDA {entry['cuda_build']} build" if entry.get("cuda_build") else "CPU-only build"
    line = f"{label:<12} {entry['version']}{note}, {build}, GPUs: {_gpus(entry)}"
    if entry["startup_lines"]:
        line += f"; {len(entry['startup_lines'])} C++ start-up lines (hidden unless --verbose)"
    return line


def render(report: dict[str, Any]) -> str:
    """One screen of text from `collect()`'s report."""
    py, machine = report["python"], report["machine"]
    lines = [f"deepepi {report['deepepi']}  Python {py['version']} ({py['executable']})  "
             f"{machine['system']} {machine['arch']}, {machine['cpus']} CPUs, "
             f"NVIDIA driver: {machine['nvidia_driver'] or 'none'}"]
    pkgs = [f"{name} {version or '-'}" for name, version in report["packages"].items()]
    for i in range(0, len(pkgs), 6):
        lines.append(("packages     " if i == 0 else " " * 13) + ", ".join(pkgs[i:i + 6]))
    lines[-1] += "  ('-': not installed)"
    ort = report["onnxruntime"]
    if ort["error"]:
        lines.append(f"onnxruntime  BROKEN: {ort['error']}")
    else:
        lines.append(f"onnxruntime  {ort['version']} ({', '.join(ort['distributions']) or '?'}), "
                     f"providers: {', '.join(ort['providers'])}")
    fw = report["frameworks"]
    lines.append(_framework_line("PyTorch", fw["torch"], "torch"))
    keras = report["packages"].get("keras")
    lines.append(_framework_line("TensorFlow", fw["tensorflow"], "tf", f" (Keras {keras})" if keras else ""))
    lines.append("extras")
    for extra, entry in report["extras"].items():
        state = "installed" if entry["installed"] else f"missing {', '.join(entry['missing'])}"
        enables = "; ".join(c.split(": ")[0] for c in entry["commands"]) or "development tools"
        lines.append(f"  {extra:<6} {state:<28} {enables}")
    cfg = report["configs"]
    if cfg["found"]:
        listed = ", ".join(f"{n} ({e['framework']})" if not e["error"] else f"{n} (ERROR)"
                           for n, e in cfg["files"].items())
        lines.append(f"configs      {cfg['dir']}: {listed or 'no .json files'}")
    else:
        lines.append(f"configs      {cfg['dir']} not found: commands without --config use built-in defaults")
    if report["problems"]:
        lines.append("problems")
        for p in report["problems"]:
            lines.append(f"  - {p['what']}\n    fix: {p['fix']} (see {p['see']})")
    else:
        lines.append("problems     none found")
    lines.append(f"({report['seconds']:.1f} s; `deepepi doctor --json` for a bug report)")
    return "\n".join(lines)
