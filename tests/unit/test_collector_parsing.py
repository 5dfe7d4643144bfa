"""Collector parsing (TEXT / JSON), filters, stop rules and observation building."""

import pytest

from services.metrics_collector.early_stopping import EarlyStopper, StopRule
from services.trial_controller.observation_builder import build_metric
from sextant.metric_lines import (
    DEFAULT_FILTER_V1ALPHA3,
    ZERO_TIME,
    FilterError,
    JsonLineError,
    MetricLog,
    compile_filters,
    parse_json_line,
    parse_text_line,
)

V1BETA1 = compile_filters(None)
V1ALPHA3 = compile_filters(None, DEFAULT_FILTER_V1ALPHA3)


def test_default_filter_v1beta1_values():
    logs = parse_text_line("epoch 3: loss=0.3 accuracy=.98 Score=-7.53e-05 other=1",
                           ["loss", "accuracy", "Score"], V1BETA1)
    assert [(m.name, m.value, m.time) for m in logs] == [
        ("loss", "0.3", ZERO_TIME), ("accuracy", ".98", ZERO_TIME), ("Score", "-7.53e-05", ZERO_TIME)]


def test_v1alpha3_filter_has_no_exponent_or_leading_dot():
    logs = parse_text_line("accuracy=.98 loss=-7.5e-05", ["accuracy", "loss"], V1ALPHA3)
    assert [(m.name, m.value) for m in logs] == [("loss", "-7.5")]


def test_rfc3339_prefix_and_line_filtering():
    line = "2024-01-02T03:04:05.123456789Z Validation-accuracy=0.91"
    assert parse_text_line(line, ["Validation-accuracy"], V1BETA1) == [
        MetricLog("2024-01-02T03:04:05.123456789Z", "Validation-accuracy", "0.91")]
    assert parse_text_line("2024-13-02T03:04:05Z acc=1", ["acc"], V1BETA1)[0].time == ZERO_TIME
    assert parse_text_line("nothing here=1", ["acc"], V1BETA1) == []


def test_user_filters():
    filters = compile_filters([r"(\w+):\s*(\d+\.\d+)"])
    assert [(m.name, m.value) for m in parse_text_line("acc: 0.5 | loss: 1.25", ["acc", "loss"], filters)] \
        == [("acc", "0.5"), ("loss", "1.25")]
    with pytest.raises(FilterError, match="two capture groups"):
        compile_filters([r"(\w+)=\d+"])
    with pytest.raises(FilterError, match=r"filter\[0\]"):
        compile_filters([r"(unclosed"])


def test_json_lines():
    logs = parse_json_line('{"acc": "0.5", "loss": 0.25, "timestamp": "2024-01-02T03:04:05Z", "x": 1}',
                           ["acc", "loss"])
    assert [(m.name, m.value, m.time) for m in logs] == [
        ("acc", "0.5", "2024-01-02T03:04:05Z"), ("loss", "0.25", "2024-01-02T03:04:05Z")]
    # epoch seconds with a real fractional part (Katib reads the fraction as nanoseconds)
    assert parse_json_line('{"acc": "1", "timestamp": 1638422847.28721}', ["acc"])[0].time == \
        "2021-12-02T05:27:27.287210Z"
    assert parse_json_line('{"acc": "1"}', ["acc"])[0].time == ZERO_TIME
    assert parse_json_line("   ", ["acc"]) == []
    with pytest.raises(JsonLineError, match="line 7"):
        parse_json_line("{nope", ["acc"], 7)


def test_stop_rules_best_value_and_start_step():
    stopper = EarlyStopper([StopRule.parse("acc;0.8;less;2")], "acc", "maximize")
    values = ["0.1", "0.9", "0.2", "0.3"]
    # best-so-far for the objective: 0.1 (skipped), 0.9 (skipped), then best stays 0.9 → never < 0.8
    assert [stopper.observe(MetricLog(ZERO_TIME, "acc", v)) for v in values] == [False] * 4
    stopper = EarlyStopper([StopRule.parse("loss;2;greater;0"), StopRule.parse("acc;0.5;less;0")],
                           "acc", "maximize")
    assert stopper.observe(MetricLog(ZERO_TIME, "loss", "3")) is False
    assert stopper.observe(MetricLog(ZERO_TIME, "acc", "0.4")) is True
    with pytest.raises(ValueError, match="comparison"):
        StopRule.parse("acc;1;bigger;0")


def test_observation_min_max_latest():
    m = build_metric("acc", [(ZERO_TIME, "0.5"), (ZERO_TIME, "0.9"), ("2024-01-01T00:00:00Z", "0.7"),
                             ("2023-01-01T00:00:00Z", "0.1"), ("2024-01-01T00:00:00Z", "unavailable")])
    assert (m.min, m.max, m.latest) == ("0.1", "0.9", "unavailable")
    empty = build_metric("acc", [])
    assert (empty.min, empty.max, empty.latest) == ("unavailable",) * 3
