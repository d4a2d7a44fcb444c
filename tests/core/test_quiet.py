"""Quiet start-up: no TensorFlow/absl C++ lines on stderr unless --verbose; nothing else is hidden."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from cli_tree import CHECKOUT, checkout_env, run_deepepi
from deepepi.core import quiet

SMOKE = CHECKOUT / "configs" / "smoke.json"
# What TensorFlow 2.21 printed on `import tensorflow` on a 2-core x86 CPU without a GPU (captured).
TF_STARTUP = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1795775365.024958    7826 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results due to floating-point round-off errors from different computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.
I0000 00:00:1795775365.025271    7826 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
I0000 00:00:1795775365.062677    7826 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available CPU instructions in performance-critical operations.
To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.
E0000 00:00:1795775367.325602    7826 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)
"""
KEPT = """\
deepepi: warning: configs/x.json: ignoring 1 unsupported config key(s): debug
\r 40%|####      | 2/5 [00:01<00:01,  1.9it/s]
Traceback (most recent call last):
  File "x.py", line 1, in <module>
F0000 00:00:1795775365.1    7826 cuda_dnn.cc:1] Check failed: fatal lines are never hidden
To enable the following instructions: only hidden right after a native line
"""


def _native(stderr: str) -> list[str]:
    return quiet.split_native_lines(stderr)[1]


def test_split_hides_exactly_the_native_lines() -> None:
    kept, native = quiet.split_native_lines(TF_STARTUP + KEPT)
    assert len(native) == 6  # banner, 3 info lines, the continuation, the cuInit error
    assert "".join(kept) == KEPT


def test_capture_writes_back_what_is_not_native(capfd: pytest.CaptureFixture[str]) -> None:
    with quiet.native_logs_hidden():
        os.write(2, TF_STARTUP.encode())  # C++ writes go straight to file descriptor 2
        print("python says hello", file=sys.stderr)
    assert capfd.readouterr().err == "python says hello\n"


def test_capture_shows_everything_when_the_block_fails(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ImportError), quiet.native_logs_hidden():
        os.write(2, TF_STARTUP.encode())
        raise ImportError("libcudart.so.12: cannot open shared object file")
    assert capfd.readouterr().err == TF_STARTUP


def test_import_hook_hides_a_noisy_module_and_restores_its_loader(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "noisy_native_mod.py").write_text(
        "import os, sys\nos.write(2, " + repr(TF_STARTUP.encode()) + ")\nprint('kept', file=sys.stderr)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(quiet, "NOISY_MODULES", ("noisy_native_mod",))
    quiet.install()
    try:
        import noisy_native_mod
    finally:
        quiet.uninstall()
        sys.modules.pop("noisy_native_mod", None)
    assert capfd.readouterr().err == "kept\n"
    assert type(noisy_native_mod.__loader__).__name__ == "SourceFileLoader"
    assert quiet._FINDER not in sys.meta_path


# Proves nothing unless the frameworks are installed (an absent one is never imported): runs in tox's cross env.
@pytest.mark.torch
@pytest.mark.tf
@pytest.mark.parametrize("args", [("--help",), ("config", "show")])
def test_help_and_config_show_print_no_native_lines_and_load_no_framework(args: tuple[str, ...]) -> None:
    code = ("import atexit, sys; atexit.register(lambda: print('loaded:', sorted(m for m in "
            "('tensorflow', 'torch') if m in sys.modules), file=sys.stderr)); "
            "from deepepi.cli import main; main()")
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                            env=checkout_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[-1] == "loaded: []"
    assert all(line.startswith("deepepi: warning: ") for line in lines[:-1]), result.stderr


@pytest.mark.tf
@pytest.mark.skipif(platform.system() != "Linux" or platform.machine() != "x86_64",
                    reason="relies on TensorFlow's Linux x86_64 start-up notices (oneDNN, CUDA stub)")
def test_tensorflow_start_up_lines_hidden_unless_verbose() -> None:
    args = ("model", "summary", "--config", str(SMOKE))
    quiet_run = run_deepepi(*args)
    loud_run = run_deepepi("--verbose", *args)
    assert quiet_run.returncode == 0 and loud_run.returncode == 0, quiet_run.stderr + loud_run.stderr
    assert quiet_run.stdout == loud_run.stdout
    assert _native(loud_run.stderr), "TensorFlow printed no start-up lines: this test proves nothing here"
    assert _native(quiet_run.stderr) == [] and quiet_run.stderr == "", quiet_run.stderr
