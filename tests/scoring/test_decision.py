"""The one Decision: precedence CLI > model metadata > config > reference default, per part, with sources."""

from __future__ import annotations

import pytest

from deepepi.core.constants import APP_ACC_SD_THRESHOLD_PCT, DEFAULT_THRESHOLD
from deepepi.core.errors import ConfigError, ModelError
from deepepi.runtimes.base import decision_layer
from deepepi.scoring.decision import DEFAULT_SOURCE, Layer, cli_layer, config_layer, resolve


def test_each_part_comes_from_the_first_layer_that_gives_it() -> None:
    meta = decision_layer({"decision_threshold": "0.37", "acc_sd_threshold_pct": "0.0"}, "m.onnx")
    cfg = config_layer({"accSdThreshold": 3.0}, "c.json")
    d = resolve(cli_layer(threshold=None, acc_sd_threshold=None, logic="raw"), meta, cfg)
    assert (d.threshold, d.acc_sd_threshold, d.logic) == (0.37, 0.0, "raw")
    assert d.sources["threshold"] == d.sources["acc_sd_threshold"] == "model metadata m.onnx"
    assert d.sources["logic"] == "CLI flag" and d.sources["warn_time"] == DEFAULT_SOURCE
    # the config's gate applies where the model records none: the bug where evaluate used 5 %
    d = resolve(cli_layer(acc_sd_threshold=None), decision_layer({}, "m.onnx"), cfg)
    assert (d.threshold, d.acc_sd_threshold) == (DEFAULT_THRESHOLD, 3.0)
    assert d.sources == {"threshold": DEFAULT_SOURCE, "acc_sd_threshold": "config c.json", "warn_time": DEFAULT_SOURCE,
                         "alarm_time": DEFAULT_SOURCE, "logic": DEFAULT_SOURCE}
    d = resolve(cli_layer(threshold=0.8, acc_sd_threshold=1.5), meta, cfg)
    assert (d.threshold, d.acc_sd_threshold) == (0.8, 1.5) and d.sources["threshold"] == "CLI flag"
    assert resolve().acc_sd_threshold == APP_ACC_SD_THRESHOLD_PCT and resolve().logic == "app"
    line = d.describe()
    assert line.startswith("decision: threshold 0.8 (CLI flag), movement gate 1.5 % (CLI flag)")


@pytest.mark.parametrize("values, needle", [({"threshold": 1.5}, "decision threshold: got 1.5"),
                                            ({"acc_sd_threshold": "x"}, "movement gate"),
                                            ({"logic": "phone"}, "alarm logic: got 'phone'"),
                                            ({"warn_time": 20.0}, "AlarmTime 10 s is below WarnTime 20 s")])
def test_bad_parts_are_one_line_errors_naming_the_source(values: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as err:
        resolve(Layer("side.json", values))
    assert "\n" not in str(err.value)
    with pytest.raises(ModelError, match="m.onnx"):
        decision_layer({"decision_threshold": "2"}, "m.onnx")
