"""bench/suggestion_quality.py reports recorded runs (--from-jsonl) and reads a cell as a win, a
loss or a tie against a baseline (--against), which BENCHMARKS.md's quality claims rest on."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "suggestion_quality.py"


@pytest.fixture(scope="module")
def quality():
    spec = importlib.util.spec_from_file_location("suggestion_quality", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_against_reads_wins_losses_and_ties_from_recorded_runs(quality, tmp_path, capsys):
    runs = tmp_path / "runs.jsonl"
    lines = []
    for seed in range(30):
        noise = (seed % 7) / 100
        for algorithm, at_25, at_50 in (("base", 1.0 + noise, 0.5 + noise),
                                        ("good", 0.5 + noise, 0.5 + noise),  # a win @25, a tie @50
                                        ("bad", 2.0 + noise, 0.9 + noise)):  # a loss at both
            lines.append(json.dumps({"function": "branin", "algorithm": algorithm, "seed": seed,
                                     "regret": {"25": at_25, "50": at_50}}))
    lines.append(json.dumps({"function": "branin", "algorithm": "base", "seed": 99,
                             "regret": {"25": 9.0}}))  # lacks a checkpoint: left out
    runs.write_text("\n".join(lines) + "\n")

    assert quality.main(["--from-jsonl", str(runs), "--algorithms", "base,good,bad", "--functions", "branin",
                         "--seeds", "0:100", "--budget", "25,50", "--against", "base"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[2].strip(): line for line in out.splitlines() if line.startswith("| branin")}
    assert set(rows) == {"base", "good", "bad"} and rows["base"].rstrip().endswith("| 30 |")
    assert "good: median <= base's in 2 of 2 cells; interval below 0 in 1, above 0 in 0" in out
    assert "bad: median <= base's in 0 of 2 cells; interval below 0 in 0, above 0 in 2" in out
