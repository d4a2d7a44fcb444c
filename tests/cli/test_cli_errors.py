"""Bad input through the real `deepepi` console script: one `deepepi: error:` line, exit code 2, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deepepi.data.csvio import CSV_COLUMNS
from deepepi.data.synth import synthesize


def deepepi(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("deepepi")
    command = [str(script)] if script.exists() else [
        sys.executable, "-c", "import sys; from deepepi.cli import main; sys.argv[0] = 'deepepi'; main()"]
    return subprocess.run(command + list(args), cwd=cwd, capture_output=True, text=True, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if not line.startswith("deepepi: warning:")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("deepepi: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def csv_lines(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    path = synthesize(tmp_path_factory.mktemp("synth"), users=2, events=3, seed=2).csv_path
    return path.read_text(encoding="utf-8").splitlines()


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_csv_missing_column_m042(tmp_path: Path, csv_lines: list[str]) -> None:
    drop = CSV_COLUMNS.index("M042")
    lines = [",".join(c for i, c in enumerate(line.split(",")) if i != drop) for line in csv_lines]
    write_csv(tmp_path / "no_m042.csv", lines)
    assert_one_line_error(deepepi("data", "windows", "no_m042.csv", "-o", "w.npz", cwd=tmp_path),
                          "no_m042.csv", "missing column M042")
    assert not (tmp_path / "w.npz").exists()


def test_csv_text_in_numeric_column(tmp_path: Path, csv_lines: list[str]) -> None:
    cells = csv_lines[3].split(",")
    cells[CSV_COLUMNS.index("M100")] = "oops"
    write_csv(tmp_path / "text.csv", csv_lines[:3] + [",".join(cells)] + csv_lines[4:])
    assert_one_line_error(deepepi("data", "inspect", "text.csv", cwd=tmp_path),
                          "text.csv", "column M100", "line 4", "'oops'")


def test_empty_csv(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    assert_one_line_error(deepepi("data", "inspect", "empty.csv", cwd=tmp_path), "empty.csv", "empty file")


def test_config_with_unknown_framework(tmp_path: Path) -> None:
    (tmp_path / "cfg.json").write_text(json.dumps({"modelConfig": {"framework": "jax"}}), encoding="utf-8")
    assert_one_line_error(deepepi("config", "show", "cfg.json", cwd=tmp_path),
                          "cfg.json", "modelConfig.framework", "'jax'")


def test_config_with_wrongly_typed_key(tmp_path: Path) -> None:
    (tmp_path / "cfg.json").write_text(json.dumps({"modelConfig": {"epochs": "ten"}}), encoding="utf-8")
    assert_one_line_error(deepepi("config", "show", "cfg.json", cwd=tmp_path),
                          "cfg.json", "modelConfig.epochs", '"ten"')


def test_malformed_osdb_json(tmp_path: Path) -> None:
    (tmp_path / "events.json").write_text('[{"id": 1, "userId": 1, "type": "NDA", "datapoints": []},\n{"id": ',
                                          encoding="utf-8")
    assert_one_line_error(deepepi("data", "flatten", "events.json", "-o", "out.csv", cwd=tmp_path),
                          "events.json", "event 1", "malformed JSON")
    assert not (tmp_path / "out.csv").exists()


def test_config_that_is_not_utf8(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.json"
    bad.write_bytes(b'{"modelConfig": {"modelFname": "caf\xe9"}}')
    assert_one_line_error(deepepi("config", "show", str(bad), cwd=tmp_path), str(bad))


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not really a zip"])
def test_windows_npz_that_is_empty_or_corrupt(tmp_path: Path, content: bytes) -> None:
    from deepepi.data.windows import Windows
    from deepepi.core.errors import DataError

    bad = tmp_path / "windows.npz"
    bad.write_bytes(content)
    with pytest.raises(DataError, match=str(bad)):
        Windows.load_npz(bad)


def test_output_path_under_a_file(tmp_path: Path, csv_lines: list[str]) -> None:
    csv = write_csv(tmp_path / "data.csv", csv_lines)
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    result = deepepi("data", "windows", str(csv), "-o", str(blocker / "w.npz"), cwd=tmp_path)
    assert_one_line_error(result, str(blocker))
    assert blocker.read_text() == "x"
