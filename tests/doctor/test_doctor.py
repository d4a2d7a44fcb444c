"""`deepepi doctor`: exit 0 in every environment, true `--json` fields, broken frameworks reported."""

from __future__ import annotations

import configparser
import importlib.metadata as metadata
import importlib.util
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from cli_tree import CHECKOUT, checkout_env, invocation_problems, run_deepepi
from deepepi.doctor import report as doctor

KEYS = {"deepepi", "python", "machine", "packages", "onnxruntime", "frameworks", "extras", "configs",
        "environment", "problems", "seconds"}
MODULES = {"torch": "torch", "tensorflow": "tensorflow"}


def _required() -> set[str]:
    names = {"torch": "torch", "tf": "tensorflow"}  # the runtimes (litert, executorch) are not frameworks here
    return {names[f.strip()] for f in os.environ.get("DEEPEPI_REQUIRE", "").split(",") if f.strip() in names}


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    result = run_deepepi("doctor", "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # quiet: not even the frameworks' start-up lines
    return json.loads(result.stdout)


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def test_json_has_every_section(report: dict[str, Any]) -> None:
    assert set(report) == KEYS
    assert report["deepepi"] == doctor.deepepi.__version__
    assert set(report["packages"]) == set(doctor.PACKAGES)
    for label in ("numpy", "onnx", "imbalanced-learn", "torch", "tensorflow", "tf2onnx", "timescoring",
                  "ai-edge-litert", "executorch"):
        assert report["packages"][label] == next(
            (v for v in map(_version, doctor.PACKAGES[label]) if v), None), label


def test_onnxruntime_providers(report: dict[str, Any]) -> None:
    import onnxruntime

    ort = report["onnxruntime"]
    assert ort["error"] is None
    assert ort["version"] == onnxruntime.__version__
    assert ort["providers"] == onnxruntime.get_available_providers()
    assert "CPUExecutionProvider" in ort["providers"]
    assert len(ort["distributions"]) == 1, f"install exactly one onnxruntime distribution: {ort}"


# The probes import each framework in a child process: only where both are installed do they run through.
@pytest.mark.torch
@pytest.mark.tf
@pytest.mark.parametrize("name", sorted(MODULES))
def test_frameworks_reported_as_installed_or_missing(report: dict[str, Any], name: str) -> None:
    entry = report["frameworks"][name]
    installed = importlib.util.find_spec(MODULES[name]) is not None
    assert entry["installed"] is installed
    if name in _required():
        assert installed and entry["error"] is None, entry
    if not installed:
        assert report["extras"]["torch" if name == "torch" else "tf"]["installed"] is False
        return
    assert entry["error"] is None, entry
    assert entry["version"].split("+")[0] == _version(name if name == "torch" else "tensorflow").split("+")[0]
    assert isinstance(entry["gpus"], list)
    if os.environ.get("CUDA_VISIBLE_DEVICES") == "":  # tox hides GPUs
        assert entry["gpus"] == []
    assert entry["cuda_build"] is None or isinstance(entry["cuda_build"], str)
    if entry["version"].endswith("+cpu"):
        assert entry["cuda_build"] is None and entry["cuda_available"] is False


def test_extras_match_setup_cfg_and_name_real_commands(report: dict[str, Any]) -> None:
    parser = configparser.ConfigParser()
    parser.read(CHECKOUT / "setup.cfg", encoding="utf-8")
    declared = dict(parser.items("options.extras_require"))
    assert set(report["extras"]) == set(declared)
    missing = sorted(set(declared) - set(doctor.EXTRA_COMMANDS))
    assert not missing, f"add these extras to deepepi.doctor.report.EXTRA_COMMANDS (the commands they enable): {missing}"
    for extra, entry in report["extras"].items():
        names = [line.split(";")[0].strip() for line in declared[extra].splitlines() if line.strip()]
        names = [doctor._REQUIREMENT_NAME.match(n).group(1) for n in names]
        assert entry["missing"] == [n for n in names if _version(n) is None]
        assert entry["installed"] is (not entry["missing"])
    for extra, commands in doctor.EXTRA_COMMANDS.items():
        for command, _ in commands:
            assert invocation_problems(f"deepepi {command}") == [], extra


def test_configs_resolve_and_load(report: dict[str, Any]) -> None:
    cfg = report["configs"]
    assert cfg["found"] is True and Path(cfg["dir"]) == CHECKOUT / "configs"
    assert cfg["default"] == str(CHECKOUT / "configs" / "nnConfig_deep.json")
    assert set(cfg["files"]) == {p.name for p in (CHECKOUT / "configs").glob("*.json")}
    assert cfg["files"]["nnConfig_deep_pytorch.json"] == {"framework": "pytorch", "error": None}
    assert all(entry["error"] is None for entry in cfg["files"].values())


def test_healthy_environment_has_no_problems(report: dict[str, Any]) -> None:
    if not any(f["installed"] for f in report["frameworks"].values()):
        assert [p["see"] for p in report["problems"]] == [f"{doctor.GUIDE}#install"]
    else:
        assert report["problems"] == []


# The probes import each framework in a child process: only where both are installed do they run through.
@pytest.mark.torch
@pytest.mark.tf
def test_human_screen_names_each_framework() -> None:
    result = run_deepepi("doctor")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) <= 24  # one screen
    for label, module in (("PyTorch", "torch"), ("TensorFlow", "tensorflow")):
        line = next(line for line in lines if line.startswith(label))
        installed = importlib.util.find_spec(module) is not None
        assert ("not installed" in line) is (not installed), line


def _fake_framework(root: Path, module: str, body: str) -> None:
    (root / module).mkdir(parents=True)
    (root / module / "__init__.py").write_text(body, encoding="utf-8")


def test_broken_frameworks_are_reported_not_fatal(tmp_path: Path) -> None:
    _fake_framework(tmp_path, "torch", "raise ImportError('libcudnn.so.9: cannot open shared object file')\n")
    _fake_framework(tmp_path, "tensorflow", "import os\nos.write(2, b'F0000 00:00:1.0 1 stub.cc:1] Check failed\\n')\n"
                                            "os.abort()\n")
    result = run_deepepi("doctor", "--json", env=checkout_env(prepend=str(tmp_path)))
    assert result.returncode == 0, result.stderr
    frameworks = json.loads(result.stdout)["frameworks"]
    assert frameworks["torch"]["installed"] is True
    assert frameworks["torch"]["error"] == "ImportError: libcudnn.so.9: cannot open shared object file"
    assert frameworks["tensorflow"]["error"] == "the import was killed by SIGABRT"
    assert frameworks["tensorflow"]["stderr_tail"] == ["F0000 00:00:1.0 1 stub.cc:1] Check failed"]
    problems = json.loads(result.stdout)["problems"]
    assert [p["what"].split()[0] for p in problems] == ["torch", "tensorflow"]


def test_a_hanging_framework_times_out(tmp_path: Path) -> None:
    _fake_framework(tmp_path, "torch", "import time\ntime.sleep(120)\n")
    _fake_framework(tmp_path, "tensorflow", "raise ImportError('no')\n")
    result = run_deepepi("doctor", "--json", "--timeout", "2", env=checkout_env(prepend=str(tmp_path)))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["frameworks"]["torch"]["error"] == "no answer within 2 s (killed)"
    assert report["seconds"] < 60


def _report(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "onnxruntime": {"distributions": {"onnxruntime-gpu": "1.31.1"}, "error": None},
        "frameworks": {"torch": {"installed": True, "error": None, "version": "2.13.0+cpu", "cuda_build": None,
                                 "gpus": []},
                       "tensorflow": {"installed": True, "error": None, "cuda_build": "12.5.1", "gpus": []}},
        "machine": {"nvidia_driver": None},
        "configs": {"files": {}},
    }
    base.update(changes)
    return base


def test_problems_name_a_fix_and_a_guide_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert doctor.problems(_report()) == []
    both = doctor.problems(_report(onnxruntime={"distributions": {"onnxruntime": "1", "onnxruntime-gpu": "1"},
                                                "error": None}))
    assert len(both) == 1 and "pip uninstall -y onnxruntime onnxruntime-gpu" in both[0]["fix"]
    gpu_box = doctor.problems(_report(machine={"nvidia_driver": "580.65"}))
    assert [p["what"] for p in gpu_box] == [
        "an NVIDIA driver is present but torch 2.13.0+cpu is a CPU-only build",
        "TensorFlow sees no GPU although an NVIDIA driver is present"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    hidden = doctor.problems(_report(machine={"nvidia_driver": "580.65"}))
    assert [p["what"] for p in hidden] == ["CUDA_VISIBLE_DEVICES='' hides every GPU"]
    none = doctor.problems(_report(frameworks={"torch": {"installed": False}, "tensorflow": {"installed": False}}))
    assert [p["see"] for p in none] == [f"{doctor.GUIDE}#install"]


def _slugs(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", markdown, flags=re.M)}


def test_every_guide_section_doctor_points_to_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    broken = {"installed": True, "error": "ImportError: x", "gpus": []}
    cuda_torch = {"installed": True, "error": None, "cuda_build": "12.8", "gpus": []}
    reports = [
        _report(onnxruntime={"distributions": {"onnxruntime": "1", "onnxruntime-gpu": "1"}, "error": "x"}),
        _report(frameworks={"torch": {"installed": False}, "tensorflow": {"installed": False}}),
        _report(frameworks={"torch": broken, "tensorflow": broken}),
        _report(machine={"nvidia_driver": "580.65"},
                frameworks={"torch": cuda_torch, "tensorflow": {"installed": False}}),
        _report(configs={"files": {"bad.json": {"framework": None, "error": "not valid JSON"}}}),
    ]
    seen = {p["see"] for r in reports for p in doctor.problems(r)}
    assert {s.split("#")[1] for s in seen} == {"install", "gpu-setup", "messages-you-may-see",
                                               "onnxruntime-gpu-or-onnxruntime", "bringing-your-config"}
    guide = (CHECKOUT / doctor.GUIDE).read_text(encoding="utf-8")
    assert {s.split("#")[1] for s in seen} <= _slugs(guide)


def test_extras_of_an_installed_package_come_from_its_metadata(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    try:
        provided = set(metadata.metadata("deepepi").get_all("Provides-Extra") or [])
    except metadata.PackageNotFoundError:
        pytest.skip("deepepi is not installed as a package here (running from the source tree only)")
    monkeypatch.setattr(doctor, "REPO_CONFIGS", tmp_path / "configs")  # no setup.cfg beside it
    extras = doctor._extra_requirements()
    assert set(extras) == provided
    assert "torch" in extras["torch"] and "tensorflow" in extras["tf"]
