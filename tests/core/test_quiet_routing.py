"""core.quiet's command-line routing and core.config's warning kinds (framework-free, in-process)."""

from __future__ import annotations

import warnings

import pytest

from deepepi.core import quiet
from deepepi.core.config import UnsupportedKeysWarning, from_dict


@pytest.mark.parametrize("given,expected", [(None, "3"), ("0", "3"), ("2", "3"), ("3", "3"), ("5", "5"),
                                            ("", "3"), ("loud", "loud")])
def test_native_log_level_is_raised_never_lowered(given: str | None, expected: str) -> None:
    env = {} if given is None else {"TF_CPP_MIN_LOG_LEVEL": given}
    quiet.quiet_native_logs(env)
    assert env["TF_CPP_MIN_LOG_LEVEL"] == expected


def test_warnings_one_line_each_and_once(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("RANK", raising=False)
    with warnings.catch_warnings():  # restores showwarning and the filters
        quiet.route_warnings()
        warnings.simplefilter("always")
        warnings.warn("first", UserWarning)
        warnings.warn("first", RuntimeWarning)  # same text from elsewhere: shown once
        warnings.warn("second", UserWarning)
    assert capsys.readouterr().err == "deepepi: warning: first\ndeepepi: warning: second\n"


def test_ranks_other_than_0_show_no_warning(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RANK", "1")
    with warnings.catch_warnings():
        quiet.route_warnings()
        warnings.warn("rank 0 says this", UserWarning)
    assert capsys.readouterr().err == ""


RAW = {"debug": True, "dataProcessing": {"validationProp": 0, "window": 500, "oversample": "smote"},
       "modelConfig": {"framework": "pytorch", "modelType": "tensorflow"}}


@pytest.mark.parametrize("warn,expected", [
    (True, ["unsupported", "disagrees", "window=500", "validationProp=0", "smote"]),
    (False, []),
    (("keys",), ["unsupported"]),
    (("keys", "window"), ["unsupported", "window=500"]),
    (("validation", "oversample", "framework"), ["disagrees", "validationProp=0", "smote"]),
])
def test_config_warns_only_the_kinds_asked_for(warn: object, expected: list[str]) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = from_dict(RAW, source="c.json", warn=warn)
    messages = [str(w.message) for w in caught]
    assert all(w.category is UnsupportedKeysWarning for w in caught)
    assert len(messages) == len(expected) and all(word in m for word, m in zip(expected, messages)), messages
    assert cfg.processing["validationProp"] == 0.2 and cfg.framework == "pytorch"  # resolved the same


def test_unknown_warning_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown config warning kind"):
        from_dict({}, warn=("windows",))
