"""Training valid data with a config whose framework is not installed: one line naming the extra, exit 2,
no run dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_tree import CHECKOUT, checkout_env, run_deepepi

from deepepi.data.synth import synthesize


@pytest.mark.parametrize("config,module,extra", [("nnConfig_deep_pytorch.json", "torch", "torch"),
                                                 ("nnConfig_deep.json", "tensorflow", "tf")])
def test_missing_framework_is_one_line_and_touches_nothing(tmp_path: Path, config: str, module: str,
                                                           extra: str) -> None:
    # A package that fails to import exactly as an absent one does, shadowing the installed one.
    (tmp_path / "absent" / module).mkdir(parents=True)
    (tmp_path / "absent" / module / "__init__.py").write_text(
        f"raise ModuleNotFoundError(\"No module named '{module}'\", name={module!r})\n", encoding="utf-8")
    out = tmp_path / "run"
    csv = synthesize(tmp_path / "data", users=3, events=40, seed=0).csv_path
    result = run_deepepi("train", "--config", str(CHECKOUT / "configs" / config), "--data", str(csv),
                         "--out", str(out), env=checkout_env(prepend=str(tmp_path / "absent")))
    assert result.returncode == 2, result.stderr
    # TensorFlow training imports keras first; in an env without TensorFlow it is keras that is missing.
    names = (module,) if module == "torch" else ("tensorflow", "keras")
    assert any(result.stderr.splitlines()[-1] == (
        f"deepepi: error: training a {'pytorch' if module == 'torch' else 'tensorflow'} model needs "
        f"{name} (pip install 'deepepi[{extra}]'): No module named '{name}'") for name in names), result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
