"""Hostile configs to `deepepi config show` (and the library loader): every numeric key refuses NaN,
Infinity, -Infinity and booleans with one line naming the key; deep nesting, devices and huge files
are refused without a traceback or a hang.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepepi.core.config import SCHEMA, TOP_LEVEL, from_dict, load_config
from deepepi.core.errors import ConfigError
from hostile import assert_refused, assert_untouched, fingerprint, run

# Every key whose default is a number (ints and floats): where NaN/inf would enter.
NUMERIC = [(section, key) for section, keys in SCHEMA.items() for key, spec in keys.items()
           if isinstance(spec.default, (int, float)) and not isinstance(spec.default, bool)]
BAD = ["NaN", "Infinity", "-Infinity", "true"]


def _config(tmp_path: Path, section: str | None, key: str, text: str) -> Path:
    body = f'{{"{key}": {text}}}' if section is None else f'{{"{section}": {{"{key}": {text}}}}}'
    path = tmp_path / "cfg.json"
    path.write_text(body, encoding="utf-8")
    return path


def test_numeric_keys_found() -> None:
    assert ("modelConfig", "lrStart") in NUMERIC and len(NUMERIC) >= 30


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("section, key", NUMERIC + [(None, "randomSeed")], ids=lambda v: str(v))
def test_non_finite_or_bool_number_is_refused(tmp_path, capsys, section, key, bad) -> None:  # noqa: ANN001
    path = _config(tmp_path, section, key, bad)
    before = fingerprint(path)
    where = key if section is None else f"{section}.{key}"
    assert_refused(run(capsys, "config", "show", path), "cfg.json", where, "expected")
    assert_untouched(before)


OTHER: list[tuple[str, str, tuple[str, ...]]] = [
    ("numClasses 3 (breaks the [batch, 2] contract)", '{"modelConfig": {"numClasses": 3}}', ("numClasses",)),
    ("randomSeed 2**40", '{"randomSeed": 1099511627776}', ("randomSeed",)),
    ("lrStart 1e400 (parses to inf)", '{"modelConfig": {"lrStart": 1e400}}', ("lrStart",)),
    ("epochs 0", '{"modelConfig": {"epochs": 0}}', ("epochs",)),
    ("batchSize 2.5", '{"modelConfig": {"batchSize": 2.5}}', ("batchSize",)),
    ("testProp 1", '{"dataProcessing": {"testProp": 1}}', ("testProp",)),
    ("fold beyond nFolds", '{"dataProcessing": {"nFolds": 2, "fold": 2}}', ("fold",)),
    ("section a list", '{"modelConfig": [1, 2]}', ("modelConfig", "JSON object")),
    ("top level a list", "[1, 2]", ("top level",)),
    ("nested 9 deep", '{"x": ' + "[" * 9 + "]" * 9 + "}", ("nested 10 levels",)),
    ("nested 100000 deep", "[" * 100_000 + "]" * 100_000, ("nested",)),
    ("truncated", '{"modelConfig": {"epochs": 3', ("not valid JSON",)),
    ("empty", "", ("not valid JSON",)),
    ("framework unknown", '{"modelConfig": {"framework": "jax"}}', ("framework",)),
]


@pytest.mark.parametrize("name, text, fragments", OTHER, ids=[o[0] for o in OTHER])
def test_bad_config_is_one_line(tmp_path, capsys, name, text, fragments) -> None:  # noqa: ANN001
    path = tmp_path / "cfg.json"
    path.write_text(text, encoding="utf-8")
    assert_refused(run(capsys, "config", "show", path), "cfg.json", *fragments)


@pytest.mark.parametrize("what, fragments", [
    ("/dev/zero", ("device",)), ("directory", ("directory",)), ("missing", ("not found",)),
    ("huge", ("larger than",)), ("latin-1", ("UTF-8",)),
])
def test_config_that_is_not_a_config_file(tmp_path, capsys, what, fragments) -> None:  # noqa: ANN001
    path = {"/dev/zero": Path("/dev/zero"), "directory": tmp_path, "missing": tmp_path / "no.json"}.get(what)
    if what == "huge":
        path = tmp_path / "huge.json"
        with open(path, "wb") as fh:
            fh.truncate((64 << 20) + 10)  # sparse: 64 MiB of NUL without the disk cost
    elif what == "latin-1":
        path = tmp_path / "l1.json"
        path.write_bytes('{"_comment": "caf\xe9"}'.encode("latin-1"))
    assert_refused(run(capsys, "config", "show", path), *fragments)


def test_bom_config_is_accepted(tmp_path, capsys) -> None:  # noqa: ANN001
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"modelConfig": {"epochs": 3}}).encode())
    rc, out, _ = run(capsys, "config", "show", path)
    assert rc == 0 and json.loads(out)["modelConfig"]["epochs"] == 3


# Property: any JSON value for any numeric key either loads as a finite number that passes the
# key's check, or is a ConfigError naming the key.
_VALUES = st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats() | st.text(max_size=4) \
    | st.lists(st.integers(), max_size=2)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from(NUMERIC), value=_VALUES)
def test_any_value_for_a_numeric_key_is_finite_or_refused(target, value) -> None:  # noqa: ANN001
    section, key = target
    try:
        cfg = from_dict({section: {key: value}}, warn=False)
    except ConfigError as err:
        assert f"{section}.{key}" in str(err) and "\n" not in str(err)
        return
    got = cfg.sections[section][key]
    if got is not None:
        assert not isinstance(got, bool) and isinstance(got, (int, float)) and math.isfinite(got)
        assert SCHEMA[section][key].check(got)
    json.dumps(cfg.to_dict(), allow_nan=False)  # what write_json does with it: never fails


def test_randomseed_is_a_top_level_numeric_key() -> None:
    assert "randomSeed" in TOP_LEVEL
    with pytest.raises(ConfigError, match="randomSeed"):
        from_dict({"randomSeed": float("nan")})


def test_reference_configs_still_load() -> None:
    from deepepi.core.config import REPO_CONFIGS

    for path in sorted(REPO_CONFIGS.glob("*.json")):
        load_config(path)
