"""Hostile round 3: the commands added since the last suite, thrown at as a careless or unlucky user would.

export --tflite/--pte/--quantize, ensemble, import, predict --stream, evaluate --sweep-q, train
--kfold/--resume/--steps/--jobs/--threads, doctor. Every case runs the real entry point in-process
(tests/helpers/hostile.py) and asserts the README promise: the documented exit code, one
`deepepi: error:` line naming the option, file, field or value, no traceback, the inputs
byte-identical, nothing written. The guards these cases hold are mechanisms, not per-command code:
deepepi.cli.params (option types with machine bounds, the `requires` mode declarations),
deepepi.models.weights.check_finite_weights (every weight load and import), deepepi.runtimes.base.Adapter
(every prediction of every runtime). Counts by outcome: docs/RELIABILITY.md, "Round 3".
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import pytest

from cli_tree import root
from deepepi.cli.params import MACHINE_CPUS, Number, RateMargin, declared_needs
from deepepi.core.config import REPO_CONFIGS
from deepepi.core.errors import ConfigError, DataError, ModelError
from evaluate_fixture import write_data, write_stub_model
from hostile import (assert_no_leftovers, assert_refused, assert_untouched, fingerprint, nan_rows_model, run,
                     with_seizure_times)
from onnx_helpers import tiny_weights, write_tiny

SMOKE = REPO_CONFIGS / "smoke.json"
BAD_NUMBERS = ["nan", "inf", "-inf", "abc", ""]


@dataclass(frozen=True)
class Kit:
    """Framework-free material, built once: the evaluation fixture's data, its stub model, two tiny
    models, their ensemble, a model that answers NaN on some windows, a CSV too short for a window."""

    root: Path
    json: Path
    csv: Path
    short_csv: Path
    stub: Path
    a: Path
    b: Path
    nan: Path
    ens: Path
    run: Path  # a directory with config.json only (export and train refuse before reading a model)

    def inputs(self) -> list[Path]:
        return [self.json, self.csv, self.short_csv, self.stub, self.a, self.b, self.nan, self.ens,
                self.run / "config.json"]


def _short_csv(src: Path, out: Path, event_id: str = "6") -> Path:
    """Only the fixture's 5-datapoint event: no complete 750-sample window."""
    with src.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    col = rows[0].index("eventId")
    with out.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows([rows[0]] + [r for r in rows[1:] if r[col] == event_id])
    return out


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    from deepepi.export.ensemble_onnx import build_ensemble

    d = tmp_path_factory.mktemp("round3")
    js, data_csv = write_data(d)
    stub = write_stub_model(d / "stub.onnx")
    a = write_tiny(d / "a.onnx", *tiny_weights(750, seed=1)).path
    b = write_tiny(d / "b.onnx", *tiny_weights(750, seed=2)).path
    ens = build_ensemble([a, b], d / "ens.onnx").path
    run_dir = d / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(SMOKE.read_text(encoding="utf-8"), encoding="utf-8")
    return Kit(d, js, data_csv, _short_csv(data_csv, d / "short.csv"), stub, a, b,
               nan_rows_model(stub, d / "nan.onnx"), Path(ens), run_dir)


def _argv(kit: Kit, out: Path, words: tuple[str, ...]) -> list[str]:
    names = {"MODEL": kit.a, "A": kit.a, "B": kit.b, "ENS": kit.ens, "NAN": kit.nan, "STUB": kit.stub,
             "CSV": kit.csv, "JSON": kit.json, "SHORT": kit.short_csv, "RUN": kit.run, "CONFIG": SMOKE}
    outs = {"OUT": out / "out", "OUTCSV": out / "p.csv", "OUTONNX": out / "o.onnx", "REPORT": out / "r.json"}
    return [str(names.get(w, outs.get(w, w))) for w in words]


def refused_cleanly(kit: Kit, capsys: pytest.CaptureFixture, tmp_path: Path, words: tuple[str, ...],
                    *fragments: str, code: int = 2) -> str:
    """Run, assert the one-line refusal, the inputs unchanged and nothing written under tmp_path."""
    before = fingerprint(*kit.inputs())
    line = assert_refused(run(capsys, *_argv(kit, tmp_path, words)), *fragments, code=code)
    assert_untouched(before)
    assert_no_leftovers(kit.root)
    assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())
    return line


# ----- 1. numbers: every numeric option of the new commands, and the machine bounds -----------------
EVALUATE = ("evaluate", "MODEL", "--data", "CSV", "-o", "OUT")
PREDICT = ("predict", "MODEL", "--data", "CSV", "-o", "OUTCSV")
ENSEMBLE = ("ensemble", "A", "B", "-o", "OUTONNX")
KFOLD = ("train", "--config", "CONFIG", "--out", "OUT", "--kfold", "2")
TRAIN = ("train", "--config", "CONFIG", "--out", "OUT")
CPU_OVER = str(MACHINE_CPUS + 1)
NUMBER_TABLE: list[tuple[tuple[str, ...], str, list[str]]] = [
    (EVALUATE, "--threads", ["0", "-1", "100000", CPU_OVER, "2.5", *BAD_NUMBERS]),
    (EVALUATE, "--bootstrap", ["0", "-1", "100001", "1e9", "2.5", *BAD_NUMBERS]),
    (EVALUATE, "--threshold", ["1.0000001", "-1e-9", "2", *BAD_NUMBERS]),
    (EVALUATE, "--target-sensitivity", ["1.0000001", "-0.1", *BAD_NUMBERS]),
    (EVALUATE, "--max-far-per-day", ["-1", "-1e-300", *BAD_NUMBERS]),
    (EVALUATE, "--acc-sd-threshold", ["-0.1", *BAD_NUMBERS]),
    (EVALUATE, "--seed", ["-1", str(2**32), "1.5", "nan"]),
    (EVALUATE, "--alarm-logic", ["phone", ""]),
    (PREDICT, "--threads", ["0", "100000", CPU_OVER, "nan"]),
    (PREDICT, "--threshold", ["1.0000001", "-1e-9", *BAD_NUMBERS]),
    (PREDICT, "--acc-sd-threshold", ["-1", "nan", "inf"]),
    (EVALUATE, "--warn-time", ["-1", "-1e-300", *BAD_NUMBERS]),
    (EVALUATE, "--alarm-time", ["-0.5", *BAD_NUMBERS]),
    (PREDICT, "--warn-time", ["-1", "nan", "inf"]),
    (PREDICT, "--alarm-time", ["-1", "nan", "-inf"]),
    (ENSEMBLE, "--q", ["0", "1", "-0.5", "1.5", "0.99999999", "1e-50", *BAD_NUMBERS]),
    (ENSEMBLE, "--seed", ["-1", str(2**32), "nan"]),
    (TRAIN, "--kfold", ["0", "1", "1001", "2.5", "nan", "abc"]),
    (KFOLD, "--nested", ["0", "1", "1001", "nan"]),
    (KFOLD, "--jobs", ["0", "-1", CPU_OVER, "100000", "nan"]),
    (KFOLD, "--threads", ["0", CPU_OVER, "100000", "1.5"]),
    (TRAIN, "--steps", ["0", "-1", "100000001", "1e9", "nan", "1.5"]),
    (TRAIN, "--epochs", ["100001", str(10**12)]),
    (("doctor",), "--timeout", ["0", "-1", "0.5", "3601", *BAD_NUMBERS]),
    (("export", "--tflite", "RUN"), "--seed", ["-1", "nan"]),
    (("export", "--pte", "RUN"), "--seed", ["-1", str(2**32)]),
    (("export", "--tflite", "RUN"), "--quantize", ["int4", "", "INT8"]),
    (("export", "--pte", "RUN"), "--quantize", ["int4", "float16"]),
    (("verify", "A", "B", "--data", "CSV", "--mode", "quantized"), "--max-drop", ["nan", "1.5", "-0.1"]),
    (("verify", "A", "B", "--data", "CSV", "--mode", "trained"), "--margin",
     ["window_fpr", "window_fpr=nan", "window_fpr=1.5", "bogus=0.1", "=0.1", "window_fpr=0.1=2"]),
]
NUMBER_CASES = [(prefix, opt, v) for prefix, opt, values in NUMBER_TABLE for v in values]


@pytest.mark.parametrize("prefix, option, value", NUMBER_CASES,
                         ids=[f"{p[0]} {o}={v!r}" for p, o, v in NUMBER_CASES])
def test_bad_number_is_refused_naming_the_option(kit, capsys, tmp_path, prefix, option, value) -> None:  # noqa: ANN001
    refused_cleanly(kit, capsys, tmp_path, (*prefix, option, value), option)


def test_cpu_bound_is_stated_in_the_refusal(kit, capsys, tmp_path) -> None:  # noqa: ANN001
    line = refused_cleanly(kit, capsys, tmp_path, (*EVALUATE, "--threads", "100000"), "--threads")
    assert f"<= {MACHINE_CPUS} ({MACHINE_CPUS} = this machine's CPU count)" in line


# ----- 2. a value is quoted as typed, never rounded into its range --------------------------------
QUOTED_TABLE = [(EVALUATE, "--threshold"), (EVALUATE, "--target-sensitivity"), (PREDICT, "--threshold"),
                (("verify", "A", "B", "--mode", "quantized", "--data", "CSV"), "--min-agreement"),
                (("verify", "A", "B", "--mode", "quantized", "--data", "CSV"), "--max-drop"),
                (ENSEMBLE, "--q")]
QUOTED_VALUES = ["1.0000001", "1.00000000001", "1.0000000000000002", "-1e-300"]
QUOTED_CASES = [(p, o, v) for p, o in QUOTED_TABLE for v in QUOTED_VALUES]


@pytest.mark.parametrize("prefix, option, value", QUOTED_CASES,
                         ids=[f"{p[0]} {o}={v}" for p, o, v in QUOTED_CASES])
def test_out_of_range_value_is_quoted_as_typed(kit, capsys, tmp_path, prefix, option, value) -> None:  # noqa: ANN001
    line = refused_cleanly(kit, capsys, tmp_path, (*prefix, option, value), option)
    assert f"got {value}," in line  # `--threshold 1.0000001` was refused as "got 1"


def test_library_threshold_rule_quotes_the_value_unrounded() -> None:
    from deepepi.scoring.operating import check_rule

    with pytest.raises(ConfigError, match=r"got 1\.0000001,"):
        check_rule(1.0000001, None, None)


# ----- 3. options that do nothing in a mode: every declaration, from click's own definitions -------
def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _commands(command, (*path, name))
        else:
            found.append(((*path, name), command))
    return found


COMMANDS = _commands(root())
DECLARED = [(path, key) for path, command in COMMANDS for key in declared_needs(command)]
# The command line without the option under test, its mode unmet (default: the command's bare minimum).
BARE = {("train",): ("train", "--config", "CONFIG", "--out", "OUT"), ("export",): ("export", "--onnx", "RUN"),
        ("verify",): ("verify", "A", "B"), ("predict",): ("predict", "MODEL", "--data", "CSV", "-o", "OUTCSV")}
UNMET = {(("train",), "init_weights"): (*BARE[("train",)], "--resume"),
         (("train",), "max_far_per_day"): (*BARE[("train",)], "--resume"),
         (("train",), "quiet"): (*BARE[("train",)], "--kfold", "2"),
         (("train",), "force_data"): (*BARE[("train",)], "--kfold", "2", "--resume"),
         (("verify",), "seed"): (*BARE[("verify",)], "--data", "CSV"),
         (("export",), "quantize=fp16"): ("export", "--pte", "RUN"),
         (("export",), "framework"): ("export", "--tflite", "RUN"),
         (("verify",), "atol"): (*BARE[("verify",)], "--mode", "lockstep"),
         (("verify",), "rtol"): (*BARE[("verify",)], "--mode", "lockstep")}


def _sample_value(param: click.Parameter, key: str) -> list[str]:
    """A valid value of the option (so only its mode can be wrong)."""
    flag = max(param.opts, key=len)
    if "=" in key:
        return [flag, key.partition("=")[2]]
    if getattr(param, "is_flag", False):
        return [flag]
    kind = param.type
    if isinstance(kind, click.Choice):
        return [flag, kind.choices[0]]
    if isinstance(kind, RateMargin):
        return [flag, "window_fpr=0.1"]
    if isinstance(kind, Number):
        return [flag, str(kind.hi if kind.lo is None else max(kind.lo, 1) if kind.integer else kind.lo)]
    return [flag, "CSV"]  # a path: an existing file


def test_every_mode_declaration_names_a_real_option() -> None:
    assert len(DECLARED) >= 15, DECLARED
    for path, command in COMMANDS:
        names = {p.name for p in command.params}
        for key in declared_needs(command):
            assert key.partition("=")[0] in names, (path, key)


def test_options_documented_for_one_mode_are_declared() -> None:
    """An option whose help says it works in one mode only ("With --kfold: ...", "trained mode: ...",
    "--onnx only: ...") must carry a declaration, so no new such option is silently ignored."""
    one_mode = re.compile(r"^(With --[\w-]+|[\w-]+ mode:|--[\w-]+ only)")
    for path, command in COMMANDS:
        declared = {k.partition("=")[0] for k in declared_needs(command)}
        for param in command.params:
            if one_mode.match(getattr(param, "help", None) or ""):
                assert param.name in declared, (path, param.name, param.help)


@pytest.mark.parametrize("path, key", DECLARED, ids=[f"{' '.join(p)}:{k}" for p, k in DECLARED])
def test_option_outside_its_mode_is_refused_naming_the_mode(kit, capsys, tmp_path, path, key) -> None:  # noqa: ANN001
    command = dict(COMMANDS)[path]
    param = next(p for p in command.params if p.name == key.partition("=")[0])
    need = declared_needs(command)[key]
    base = UNMET.get((path, key), BARE.get(path, path))
    argv = (*base, *_sample_value(param, key))
    line = refused_cleanly(kit, capsys, tmp_path, argv, max(param.opts, key=len), need.what)
    assert " needs " in line and "does nothing" in line


@pytest.mark.parametrize("words, fragment", [
    (("export", "--onnx", "RUN", "--tflite", "RUN"), "give only one of"),
    (("export", "--quantize", "int8"), "one of --onnx, --tflite, --pte"),
    (("ensemble", "-o", "OUTONNX"), "Missing argument"),
    (("ensemble", "A", "B"), "Missing option"),
    (("import", "A", "-o", "OUT"), "Missing option"),
    (("import", "A", "-c", "CONFIG"), "Missing option"),
    (("predict", "MODEL", "-o", "OUTCSV"), "Missing option"),
    (("predict", "MODEL", "--data", "CSV", "--stream", "--stream=1"), "--stream"),
    (("evaluate", "MODEL", "-o", "OUT"), "Missing option"),
    (("evaluate", "CSV", "--data", "CSV", "-o", "OUT"), "looks like data"),
    (("doctor", "extra"), "unexpected extra argument"),
    (("train", "--kfold"), "--kfold"),
], ids=lambda v: " ".join(v) if isinstance(v, tuple) else None)
def test_usage_of_the_new_commands_is_one_line(kit, capsys, tmp_path, words, fragment) -> None:  # noqa: ANN001
    refused_cleanly(kit, capsys, tmp_path, words, fragment)


# ----- 4. non-finite numbers never pass --------------------------------------------------------
def test_nan_probabilities_are_refused_naming_model_and_rows(kit, capsys, tmp_path) -> None:  # noqa: ANN001
    line = refused_cleanly(kit, capsys, tmp_path, ("evaluate", "NAN", "--data", "CSV", "-o", "OUT"),
                           "nan.onnx", "non-finite probabilities", "input row")
    assert re.search(r"for 1 of 21 windows, input row 19 ", line), line  # event 5's p 0.1 window


@pytest.mark.parametrize("extra", [(), ("--stream",)], ids=["batch", "stream"])
def test_predict_refuses_nan_probabilities(kit, capsys, tmp_path, extra) -> None:  # noqa: ANN001
    line = refused_cleanly(kit, capsys, tmp_path, ("predict", "NAN", "--data", "CSV", "-o", "OUTCSV", *extra),
                           "nan.onnx", "non-finite probabilities")
    if extra:
        assert "streamed datapoint of event 5" in line


def test_verify_fails_a_model_with_nan_outputs(kit, capsys, tmp_path) -> None:  # noqa: ANN001
    rc, out, err = run(capsys, *_argv(kit, tmp_path, ("verify", "NAN", "STUB", "--data", "CSV")))
    assert rc == 1 and "Traceback" not in out + err
    assert re.search(r"softmax A\s+FAIL", out) and "verdict: FAIL" in out


@pytest.mark.parametrize("qs", ["0.99999999", "0.3,0.99999999", "1e-46"])
def test_sweep_q_nan_is_refused_naming_q_and_rows(kit, capsys, tmp_path, qs) -> None:  # noqa: ANN001
    line = refused_cleanly(kit, capsys, tmp_path, ("evaluate", "ENS", "--data", "CSV", "--sweep-q", qs, "-o", "OUT"),
                           "ens.onnx at q=", "non-finite probabilities", "input rows 0, 1, 2")


@pytest.mark.parametrize("q", [0.0, 1.0, float("nan")])
def test_ensemble_q_outside_the_open_interval_gives_no_probabilities(kit, q) -> None:  # noqa: ANN001
    from deepepi.evaluate.qsweep import ensemble_p
    from deepepi.runtimes import open_model

    with pytest.raises(ModelError, match=r"non-finite probabilities for 3 of 3 windows, input rows 0, 1, 2 "):
        ensemble_p(open_model(kit.ens), np.full((3, 750), 1200.0, np.float32), q)


def test_an_adapter_cannot_skip_the_checks() -> None:
    from deepepi.runtimes.base import Adapter

    with pytest.raises(TypeError, match="implement _proba, not predict_proba"):
        type("Unchecked", (Adapter,), {"predict_proba": lambda self, x: x})


WEIGHT_MUTATIONS = {  # key, value, what the refusal says
    "NaN kernel": ("conv1/kernel", np.nan, "non-finite value(s), first nan"),
    "+inf bias": ("conv1/bias", np.inf, "first inf"),
    "-inf gamma": ("conv1_bn/gamma", -np.inf, "first -inf"),
    "1e39 (float64 beyond float32)": ("conv1/kernel", 1e39, "first 1e+39"),
    "NaN moving_mean": ("conv1_bn/moving_mean", np.nan, "first nan"),
    "negative moving_variance": ("conv1_bn/moving_variance", -0.5, "negative value(s), first -0.5"),
    "NaN moving_variance": ("conv1_bn/moving_variance", np.nan, "first nan"),
}


def _mutated_weights(directory: Path, key: str, value: float) -> Path:
    """A neutral weights file of the smoke architecture with one value replaced, written past the
    check (np.savez), as a corrupted or hand-edited file would be."""
    from deepepi.core.config import load_config
    from deepepi.models.deepepi_cnn.spec import SPEC_KEY
    from deepepi.models.registry import spec_from_config
    from onnx_helpers import random_weights

    spec = spec_from_config(load_config(SMOKE, warn=False))
    weights = {k: v.astype(np.float64) for k, v in random_weights(spec, 0).items()}
    weights[key].flat[3] = value
    path = directory / "bad.npz"
    np.savez(path, **weights, **{SPEC_KEY: np.array(spec.to_json())})
    return path


@pytest.mark.parametrize("mutation", WEIGHT_MUTATIONS)
def test_non_finite_neutral_weights_are_refused_on_load(tmp_path, mutation) -> None:  # noqa: ANN001
    from deepepi.models.weights import load_weights

    key, value, says = WEIGHT_MUTATIONS[mutation]
    path = _mutated_weights(tmp_path, key, value)
    with pytest.raises(ModelError, match=re.escape(says)) as err:
        load_weights(path)
    assert str(err.value).startswith(f"{path}: ") and "/" in str(err.value)


@pytest.mark.torch
@pytest.mark.parametrize("mutation", ["NaN kernel", "negative moving_variance"])
def test_non_finite_init_weights_are_refused_before_training(tmp_path, capsys, mutation) -> None:  # noqa: ANN001
    key, value, says = WEIGHT_MUTATIONS[mutation]
    path = _mutated_weights(tmp_path, key, value)
    before = fingerprint(path)
    assert_refused(run(capsys, "train", "--config", SMOKE, "--framework", "pytorch", "--init-weights", path,
                       "--out", tmp_path / "run", "--epochs", "1"), str(path), says)
    assert_untouched(before)
    assert not (tmp_path / "run").exists()


REFERENCE_MUTATIONS = {
    "NaN conv weight": ("conv_stack.0.weight", float("nan"), "non-finite"),
    "+inf dense weight": ("fc2.weight", float("inf"), "first inf"),
    "-inf output bias": ("fc_out.bias", float("-inf"), "first -inf"),
    "NaN running_mean": ("conv_stack.4.running_mean", float("nan"), "first nan"),
    "negative running_var (conv)": ("conv_stack.1.running_var", -1.0, "negative value(s), first -1.0"),
    "negative running_var (dense)": ("bn3.running_var", -0.25, "negative value(s), first -0.25"),
}


@pytest.fixture(scope="module")
def reference_pt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    from hostile import reference_torch_config, reference_torch_state

    d = tmp_path_factory.mktemp("reference")
    return reference_torch_config(d), reference_torch_state()


@pytest.mark.torch
@pytest.mark.parametrize("mutation", [None, *REFERENCE_MUTATIONS])
def test_import_refuses_non_finite_weights_and_bn_statistics(tmp_path, capsys, reference_pt, mutation) -> None:  # noqa: ANN001
    import torch

    config, state = reference_pt
    state = {k: v.clone() for k, v in state.items()}
    if mutation is not None:
        key, value, _ = REFERENCE_MUTATIONS[mutation]
        state[key].view(-1)[1] = value
    model = tmp_path / "ref.pt"
    torch.save({"epoch": 3, "model_state_dict": state}, model)
    before = fingerprint(model, config)
    result = run(capsys, "import", model, "-c", config, "-o", tmp_path / "imported")
    assert_untouched(before)
    if mutation is None:  # the control: the same file unmutated imports
        assert result[0] == 0 and (tmp_path / "imported" / "weights.npz").is_file(), result
        return
    assert_refused(result, str(model), REFERENCE_MUTATIONS[mutation][2])
    assert not (tmp_path / "imported").exists() and not list(tmp_path.glob(".imported*"))


@pytest.mark.torch
@pytest.mark.parametrize("key, value, says", [("conv1_bn.running_var", -2.0, "negative value(s), first -2.0"),
                                              ("conv2.weight", float("nan"), "first nan")])
def test_a_checkpoint_with_non_finite_weights_is_refused_by_every_command(tmp_path, capsys, kit, key, value,
                                                                        says) -> None:  # noqa: ANN001
    import torch

    from onnx_helpers import make_run, small_config

    run_dir = make_run(tmp_path / "run", small_config(seconds=30))
    payload = torch.load(run_dir / "model.pt", weights_only=True)
    payload["state_dict"][key].view(-1)[0] = value
    torch.save(payload, run_dir / "model.pt")
    before = fingerprint(run_dir / "model.pt")
    for argv in (("evaluate", run_dir / "model.pt", "--data", kit.csv, "-o", tmp_path / "ev"),
                 ("predict", run_dir / "model.pt", "--data", kit.csv, "-o", tmp_path / "p.csv")):
        assert_refused(run(capsys, *argv), f"{run_dir / 'model.pt'}: ", says)
    assert_untouched(before)
    assert not (tmp_path / "ev").exists() and not (tmp_path / "p.csv").exists()


@pytest.mark.tf
@pytest.mark.parametrize("content, says", [(b"", "not a zip archive"), (b"not a model\n", "not a zip archive"),
                                           (None, "not a loadable .keras model")],
                         ids=["empty", "text", "zip without a model"])
def test_a_broken_keras_file_is_not_reported_as_missing(tmp_path, capsys, kit, content, says) -> None:  # noqa: ANN001
    import zipfile

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(SMOKE.read_text(encoding="utf-8"), encoding="utf-8")
    model = run_dir / "model.keras"
    if content is None:
        with zipfile.ZipFile(model, "w") as z:
            z.writestr("config.json", "{}")
    else:
        model.write_bytes(content)
    line = assert_refused(run(capsys, "evaluate", model, "--data", kit.csv, "-o", tmp_path / "ev"), str(model), says)
    assert "not found" not in line.lower(), line  # Keras calls a file that is no zip "File not found"
    assert not (tmp_path / "ev").exists()


# ----- 5. data: seizureTimes, onsets beyond the recording, too-short data ------------------------
MALFORMED_TIMES = {
    "text": "20 to 45", "one number": [20], "three numbers": [20, 30, 45], "end before start": [45, 20],
    "a string inside": ["20", 45], "a boolean inside": [True, 45], "null inside": [None, 45],
    "an object": {"start": 20, "end": 45}, "a number": 20, "NaN": "@[NaN, 45]", "Infinity": "@[20, Infinity]",
    "1e999": "@[20, 1e999]", "nested": [[20, 45]],
}


@pytest.mark.parametrize("name", MALFORMED_TIMES)
def test_malformed_seizure_times_are_refused_naming_event_and_file(kit, capsys, tmp_path, name) -> None:  # noqa: ANN001
    data = with_seizure_times(kit.json, kit.root / f"times-{abs(hash(name))}.json", MALFORMED_TIMES[name])
    try:
        refused_cleanly(kit, capsys, tmp_path, ("evaluate", "STUB", "--data", str(data), "-o", "OUT"),
                        str(data), "event 0 (id 1)", "seizureTimes", "expected [start, end]")
    finally:
        data.unlink()


@pytest.mark.parametrize("times, where", [([100000, 100010], "100005.0 to 100015.0 s"),
                                          ([-5000, -4000], "-4995.0 to -3995.0 s")],
                         ids=["after the recording", "before the recording"])
def test_seizure_outside_the_recording_is_refused(kit, capsys, tmp_path, times, where) -> None:  # noqa: ANN001
    data = with_seizure_times(kit.json, kit.root / f"outside-{times[0]}.json", times)
    try:
        refused_cleanly(kit, capsys, tmp_path, ("evaluate", "STUB", "--data", str(data), "-o", "OUT"),
                        str(data), "event 1: seizureTimes", where, "outside the recording (0 to 50.0 s)")
    finally:
        data.unlink()


@pytest.mark.parametrize("times, onset", [(None, None), ([], None), ([20.0, 45.0], 25.0), ([0, 0], 5.0),
                                          ([-5, 10], 0.0), ([20, 20.5], 25.0)],
                         ids=["null", "empty", "floats", "zero length", "from the recording start", "short"])
def test_odd_but_valid_seizure_times_are_read(kit, tmp_path, times, onset) -> None:  # noqa: ANN001
    """Seconds from the recording start (which is 5 s before the event's dataTime)."""
    from deepepi.core.config import load_config
    from deepepi.evaluate.data import load

    data = with_seizure_times(kit.json, tmp_path / "ok.json", times)
    events = load([data], load_config(None, warn=False)).events  # the default config: 750-sample windows, step 125
    first = events[events["eventId"] == 1].iloc[0]
    if onset is None:
        assert first["onset_source"] == "recording_start" or first["onset"] == first["start"]
    else:
        assert first["onset"] - first["start"] == pytest.approx(onset, abs=1e-6)


@pytest.mark.parametrize("words", [("predict", "MODEL", "--data", "SHORT", "-o", "OUTCSV"),
                                   ("evaluate", "MODEL", "--data", "SHORT", "-o", "OUT")],
                         ids=["predict", "evaluate"])
def test_no_complete_window_names_the_data_file(kit, capsys, tmp_path, words) -> None:  # noqa: ANN001
    refused_cleanly(kit, capsys, tmp_path, words, f"{kit.short_csv}: ", "no complete 750-sample windows")


def test_stream_of_short_data_is_the_apps_answer_not_an_error(kit, capsys, tmp_path) -> None:  # noqa: ANN001
    """The app gives p = 0 until its buffer is full: the stream of a too-short event is 5 rows of 0."""
    rc, _, err = run(capsys, *_argv(kit, tmp_path, ("predict", "MODEL", "--data", "SHORT", "--stream", "-o",
                                                    "OUTCSV")))
    assert rc == 0, err
    rows = list(csv.DictReader((tmp_path / "p.csv").open(encoding="utf-8")))
    assert len(rows) == 5 and {r["buffer_full"] for r in rows} == {"0"} and {r["p_seizure"] for r in rows} == {"0.0"}


# ----- 6. hostile paths for the new commands' inputs (outputs: the writer's own suite) -------------
def _hostile_path(kit: Kit, tmp_path: Path, kind: str) -> Path:
    if kind == "missing":
        return tmp_path.parent / "no-such-file.onnx"
    if kind == "directory":
        return kit.root
    if kind == "device":
        return Path("/dev/null")
    if kind == "empty .onnx":
        path = kit.root / "empty.onnx"
        path.write_bytes(b"")
        return path
    if kind == "truncated .onnx":
        path = kit.root / "truncated.onnx"
        path.write_bytes(kit.a.read_bytes()[:200])
        return path
    if kind == "text as .onnx":
        path = kit.root / "text.onnx"
        path.write_text("model\n", encoding="utf-8")
        return path
    if kind == "data file":
        return kit.csv
    raise AssertionError(kind)


PATH_KINDS = ["missing", "directory", "device", "empty .onnx", "truncated .onnx", "text as .onnx", "data file"]
PATH_COMMANDS = {
    "ensemble member": ("ensemble", "A", "@", "-o", "OUTONNX"),
    "predict model": ("predict", "@", "--data", "CSV", "-o", "OUTCSV"),
    "predict --stream model": ("predict", "@", "--data", "CSV", "--stream", "-o", "OUTCSV"),
    "evaluate --sweep-q model": ("evaluate", "@", "--data", "CSV", "--sweep-q", "-o", "OUT"),
}
PATH_CASES = [(c, k) for c in PATH_COMMANDS for k in PATH_KINDS]


@pytest.mark.parametrize("command, kind", PATH_CASES, ids=[f"{c}: {k}" for c, k in PATH_CASES])
def test_hostile_model_path_is_one_line(kit, capsys, tmp_path, command, kind) -> None:  # noqa: ANN001
    path = _hostile_path(kit, tmp_path, kind)
    words = tuple(str(path) if w == "@" else w for w in PATH_COMMANDS[command])
    try:
        line = refused_cleanly(kit, capsys, tmp_path, words)
        assert str(path) in line or path.name in line or "looks like data" in line, line
    finally:
        if path.parent == kit.root and path.name in ("empty.onnx", "truncated.onnx", "text.onnx"):
            path.unlink()


DATA_KINDS = ["missing", "directory", "device", "empty .onnx", "model file"]
DATA_COMMANDS = {"predict --data": ("predict", "MODEL", "--data", "@", "-o", "OUTCSV"),
                 "predict --stream --data": ("predict", "MODEL", "--data", "@", "--stream", "-o", "OUTCSV"),
                 "evaluate --sweep-q --data": ("evaluate", "ENS", "--data", "@", "--sweep-q", "0.5", "-o", "OUT")}
DATA_CASES = [(c, k) for c in DATA_COMMANDS for k in DATA_KINDS]


@pytest.mark.parametrize("command, kind", DATA_CASES, ids=[f"{c}: {k}" for c, k in DATA_CASES])
def test_hostile_data_path_is_one_line(kit, capsys, tmp_path, command, kind) -> None:  # noqa: ANN001
    path = kit.a if kind == "model file" else _hostile_path(kit, tmp_path, kind)
    words = tuple(str(path) if w == "@" else w for w in DATA_COMMANDS[command])
    try:
        line = refused_cleanly(kit, capsys, tmp_path, words)
        assert str(path) in line or path.name in line, line
    finally:
        if path.name == "empty.onnx":
            path.unlink()


@pytest.mark.parametrize("kind", ["missing", "directory", "device", "data file", "text as .onnx"])
@pytest.mark.parametrize("fmt", ["--tflite", "--pte"])
def test_export_app_formats_refuse_a_source_that_is_no_run(kit, capsys, tmp_path, fmt, kind) -> None:  # noqa: ANN001
    path = kit.root / "empty-dir" if kind == "directory" else _hostile_path(kit, tmp_path, kind)
    if kind == "directory":
        path.mkdir(exist_ok=True)
    try:
        refused_cleanly(kit, capsys, tmp_path, ("export", fmt, str(path), "-o", "OUTONNX"), path.name)
    finally:
        if path.name == "text.onnx":
            path.unlink()


@pytest.mark.parametrize("kind", ["missing", "directory", "device", "text suffix",
                                  pytest.param("empty .pt", marks=pytest.mark.torch),
                                  pytest.param("text as .pt", marks=pytest.mark.torch)])
def test_import_refuses_what_is_not_a_model_file(kit, capsys, tmp_path, kind) -> None:  # noqa: ANN001
    files = {"text suffix": ("model.txt", b"x"), "empty .pt": ("empty.pt", b""), "text as .pt": ("text.pt", b"hi\n")}
    if kind in files:
        name, content = files[kind]
        path = tmp_path.parent / f"{tmp_path.name}-{name}"
        path.write_bytes(content)
    else:
        path = _hostile_path(kit, tmp_path, kind)
    try:
        refused_cleanly(kit, capsys, tmp_path, ("import", str(path), "-c", "CONFIG", "-o", "OUT"), path.name)
    finally:
        if kind in files:
            path.unlink()


# ----- 7. k-fold resume reads the config the k-fold run recorded -----------------------------------
def test_kfold_resume_takes_the_recorded_config(tmp_path) -> None:  # noqa: ANN001
    from deepepi.core.config import load_config
    from deepepi.train.kfold import _recorded_config

    given = load_config(SMOKE, warn=False)
    raw = given.to_dict()
    raw["randomSeed"], raw["modelConfig"]["epochs"] = 7, 3
    (tmp_path / "fold-1").mkdir()
    (tmp_path / "fold-1" / "config.json").write_text(json.dumps(raw), encoding="utf-8")
    got = _recorded_config(tmp_path, given)
    assert (got.seed, got.model["epochs"]) == (7, 3) and got.source == str(tmp_path / "fold-1" / "config.json")
    assert _recorded_config(tmp_path / "absent", given) is given  # nothing recorded: the given config
