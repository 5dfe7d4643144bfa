"""CollectorSettings: the typed collector settings and their argv at the process boundary."""

from __future__ import annotations

import json

import pytest

from services.metrics_collector.runner import build_parser
from sextant.runtime.collector_settings import CollectorSettings, StopRule

FULL = CollectorSettings(
    metrics=("acc", "loss"), objective_type="maximize", kind="File", dialect="v1alpha3",
    db_manager="127.0.0.1:7000", path="/var/log/katib/m.log", format="JSON", filters=(r"(\w+)=(\S+)",),
    stop_rules=(StopRule("loss", "0.5", "less", 3),), early_stopping="127.0.0.1:6788", trial="t-1",
    poll_interval=0.2, flush_interval=0.5)


def test_argv_is_what_the_collector_reads():
    args = build_parser().parse_args(FULL.to_argv())
    assert args.metrics == "acc;loss" and args.objective_type == "maximize"
    assert (args.kind, args.dialect, args.db_manager) == ("File", "v1alpha3", "127.0.0.1:7000")
    assert (args.path, args.format, args.filter) == ("/var/log/katib/m.log", "JSON", [r"(\w+)=(\S+)"])
    assert args.stop_rule == ["loss;0.5;less;3"] and args.early_stopping == "127.0.0.1:6788"
    assert (args.trial, args.poll_interval, args.flush_interval) == ("t-1", 0.2, 0.5)
    assert args.report == "direct"


def test_custom_command_and_spool_reach_the_collector():
    spec = CollectorSettings(metrics=("acc",), kind="Custom", custom_command=("python", "c.py", "--x=1"),
                         report="spool")
    args = build_parser().parse_args(spec.to_argv())
    assert json.loads(args.custom_command) == ["python", "c.py", "--x=1"] and args.report == "spool"


def test_record_round_trip():
    assert CollectorSettings.from_record(json.loads(json.dumps(FULL.to_record()))) == FULL


def test_after_exit_only_without_stop_rules_and_in_spool_mode():
    assert CollectorSettings(metrics=("a",), report="spool").collects_after_exit()
    assert not CollectorSettings(metrics=("a",)).collects_after_exit()
    assert not CollectorSettings(metrics=("a",), kind="TensorFlowEvent", report="spool").collects_after_exit()
    assert not CollectorSettings(metrics=("a",), report="spool",
                             stop_rules=(StopRule("a", "1", "less"),)).collects_after_exit()


def test_unknown_kind_is_rejected_naming_the_field():
    with pytest.raises(ValueError, match="collector.kind"):
        CollectorSettings(metrics=("a",), kind="Carrier pigeon")


def test_paths_are_rewritten_in_path_and_custom_command():
    spec = CollectorSettings(metrics=("a",), kind="Custom", path="/katib/m.log", custom_command=("c", "/katib/m.log"))
    moved = spec.with_paths(lambda p: p.replace("/katib", "/tmp/j"))
    assert moved.path == "/tmp/j/m.log" and moved.custom_command == ("c", "/tmp/j/m.log")
