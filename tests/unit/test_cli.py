"""The CLI without a server: argument parsing, validate, exit codes and output formatting."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest

from sextant.cli import main as cli
from sextant.cli.errors import BadInput
from sextant.cli.logs_cmd import follow, job_dir
from sextant.cli.render import render_list, status_word, table
from sextant.cli.resources_cmd import parse_duration, parse_for, parse_selector
from sextant.timestamps import age
from tests.experiments import small_experiment

NOW = datetime(2024, 1, 2, 12, 0, 0, tzinfo=UTC)


def good(name: str, max_trials: int = 4, algorithm: str = "random") -> str:
    """A valid experiment (or, with a bad budget or algorithm, one made invalid on purpose)."""
    return small_experiment(name, ["python", "train.py", "--lr=${trialParameters.learningRate}"], metric="accuracy",
                            algorithm=algorithm, max_trials=max_trials, parameters=[("lr", "double", "0.01", "0.1")],
                            trial_parameters={"learningRate": "lr"})


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_validate_accepts_a_good_file_and_prints_defaults(tmp_path, capsys):
    path = tmp_path / "e.yaml"
    path.write_text(good("good") + "---\n" + good("other"))
    code, out, err = run(capsys, "validate", "-f", str(path))
    assert code == 0, err
    assert out.splitlines() == ["experiment.kubeflow.org/good valid", "experiment.kubeflow.org/other valid"]
    code, out, _ = run(capsys, "validate", "-f", str(path), "-o", "json")
    docs = json.loads(out)
    assert [d["metadata"]["name"] for d in docs] == ["good", "other"]
    # the mutating defaults were applied (collector StdOut, metric strategy from the objective)
    assert docs[0]["spec"]["metricsCollectorSpec"]["collector"]["kind"] == "StdOut"
    assert {"name": "accuracy", "value": "max"} in docs[0]["spec"]["objective"]["metricStrategies"]


def test_validate_reports_every_error_with_its_field_and_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    text = good("bad", max_trials=0, algorithm="")
    path.write_text(text)
    code, out, err = run(capsys, "validate", "-f", str(path))
    assert code == 2
    assert "spec.maxTrialCount" in err and "spec.algorithm.algorithmName" in err
    assert "Traceback" not in err and out == ""


@pytest.mark.parametrize("content, fragment", [
    ("a: [1, 2\n", "invalid YAML at line"),
    ("kind: Trial\nmetadata: {name: x}\n", "only Experiment can be applied"),
    ("", "no documents"),
])
def test_validate_bad_files(tmp_path, capsys, content, fragment):
    path = tmp_path / "f.yaml"
    path.write_text(content)
    code, _, err = run(capsys, "validate", "-f", str(path))
    assert code == 2 and fragment in err


def test_validate_reads_stdin(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(good("piped")))
    code, out, _ = run(capsys, "validate", "-f", "-")
    assert code == 0 and "piped valid" in out


def test_missing_file_and_unknown_kind_exit_2(capsys):
    assert run(capsys, "validate", "-f", "/no/such/file.yaml")[0] == 2
    assert run(capsys, "--data-dir", "/tmp", "get", "widgets")[0] == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["get"])
    assert exc.value.code == 2


def test_run_checks_a_file_before_it_would_start_a_stack(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(good("bad", max_trials=0))
    code, out, err = run(capsys, "--data-dir", str(tmp_path / "data"), "run", "-f", str(path))
    assert code == 2 and f"{path}" in err and "spec.maxTrialCount" in err
    assert "starting the local stack" not in out and not (tmp_path / "data" / "stack.json").exists()
    path.write_text(good("one") + "---\n" + good("two"))
    code, _, err = run(capsys, "--data-dir", str(tmp_path / "data"), "run", "-f", str(path))
    assert code == 2 and "run takes exactly one experiment, found 2" in err


def test_no_stack_is_a_clear_failure(tmp_path, capsys):
    code, _, err = run(capsys, "--data-dir", str(tmp_path), "get", "experiments")
    assert code == 1 and "sextant up" in err


def test_durations_conditions_selectors():
    assert parse_duration("90") == 90 and parse_duration("10m") == 600 and parse_duration("1h30m") == 5400
    assert parse_duration("2.5s") == 2.5
    for bad in ("", "ten", "5x"):
        with pytest.raises(BadInput):
            parse_duration(bad)
    assert parse_for("condition=succeeded") == "Succeeded"
    with pytest.raises(BadInput):
        parse_for("condition=Done")
    assert parse_selector("a=b,c=d") == {"a": "b", "c": "d"}
    with pytest.raises(BadInput):
        parse_selector("novalue")


def test_age_like_kubectl():
    assert age("2024-01-02T11:59:30Z", NOW) == "30s"
    assert age("2024-01-02T11:50:00Z", NOW) == "10m"
    assert age("2024-01-02T07:00:00Z", NOW) == "5h"
    assert age("2023-12-29T12:00:00Z", NOW) == "4d"
    assert age(None, NOW) == "<unknown>" and age("0001-01-01T00:00:00Z", NOW) == "<unknown>"


def experiment_doc(name: str, conditions: list[dict], best: str | None = None) -> dict:
    status = {"conditions": conditions, "trials": 5, "trialsSucceeded": 4, "trialsRunning": 1}
    if best:
        status["currentOptimalTrial"] = {"bestTrialName": f"{name}-abc",
                                         "observation": {"metrics": [{"name": "accuracy", "min": "0.5",
                                                                      "max": best, "latest": "0.7"}]}}
    return {"kind": "Experiment", "metadata": {"name": name, "namespace": "default",
                                                "creationTimestamp": "2024-01-02T11:58:00Z"},
            "spec": {"objective": {"type": "maximize", "objectiveMetricName": "accuracy"},
                     "algorithm": {"algorithmName": "tpe"}},
            "status": status}


def test_status_word_is_the_last_condition_as_katibs_printer_column_shows():
    running = [{"type": "Created", "status": "True"}, {"type": "Running", "status": "True"}]
    done = running[:1] + [{"type": "Running", "status": "False"}, {"type": "Succeeded", "status": "True"}]
    # a Suggestion that has served its last request: Running flipped to False, moved last
    served = [{"type": "Created", "status": "True"}, {"type": "DeploymentReady", "status": "True"},
              {"type": "Running", "status": "False"}]
    assert status_word({"status": {"conditions": running}}) == "Running"
    assert status_word({"status": {"conditions": done}}) == "Succeeded"
    assert status_word({"status": {"conditions": served}}) == "Running"
    assert status_word({"status": {}}) == "Pending"


def test_experiment_table_and_wide():
    docs = [experiment_doc("alpha", [{"type": "Succeeded", "status": "True"}], best="0.93"),
            experiment_doc("beta", [{"type": "Running", "status": "True"}])]
    lines = render_list("Experiment", docs, None, now=NOW).splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "TRIALS", "SUCCEEDED", "BEST", "AGE"]
    assert lines[1].split() == ["alpha", "Succeeded", "5", "4", "0.93", "2m"]
    assert lines[2].split() == ["beta", "Running", "5", "4", "-", "2m"]
    wide = render_list("Experiment", docs, "wide", now=NOW).splitlines()
    assert "ALGORITHM" in wide[0] and "tpe" in wide[1] and "alpha-abc" in wide[1]


def test_yaml_and_json_output():
    docs = [experiment_doc("alpha", [])]
    assert json.loads(render_list("Experiment", docs, "json"))["kind"] == "List"
    assert json.loads(render_list("Experiment", docs, "json", single=True))["metadata"]["name"] == "alpha"
    assert render_list("Experiment", docs, "yaml", single=True).startswith("kind: Experiment")


def test_trial_table_shows_objective_value_by_type():
    trial = {"kind": "Trial", "metadata": {"name": "t1", "creationTimestamp": "2024-01-02T11:59:00Z",
                                          "labels": {"katib.kubeflow.org/experiment": "alpha"}},
             "spec": {"objective": {"type": "minimize", "objectiveMetricName": "loss"},
                      "parameterAssignments": [{"name": "lr", "value": "0.1"}]},
             "status": {"conditions": [{"type": "Succeeded", "status": "True"}],
                        "observation": {"metrics": [{"name": "loss", "min": "0.2", "max": "0.9", "latest": "0.3"}]}}}
    lines = render_list("Trial", [trial], "wide", now=NOW).splitlines()
    assert lines[0].split() == ["NAME", "EXPERIMENT", "STATUS", "OBJECTIVE", "AGE", "PARAMETERS"]
    assert lines[1].split() == ["t1", "alpha", "Succeeded", "0.2", "60s", "lr=0.1"]


def test_trial_table_marks_pareto_optimal_trials_only_for_multi_objective_experiments():
    def trial(name):
        return {"kind": "Trial", "metadata": {"name": name, "namespace": "ns", "creationTimestamp": "2024-01-02T11:59:00Z"},
                "spec": {"objective": {"type": "minimize", "objectiveMetricName": "loss"}}, "status": {}}
    lines = render_list("Trial", [trial("t1"), trial("t2")], None, now=NOW, pareto={("ns", "t2")}).splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "OBJECTIVE", "PARETO", "AGE"]
    assert lines[1].split() == ["t1", "Pending", "-", "60s"] and lines[2].split() == ["t2", "Pending", "-", "*", "60s"]
    assert "PARETO" not in render_list("Trial", [trial("t1")], None, now=NOW)


def test_describe_lists_the_pareto_front():
    from sextant.cli.describe_cmd import describe_experiment

    member = {"bestTrialName": "fast", "observation": {"metrics": [
        {"name": "accuracy", "latest": "0.9"}, {"name": "latency", "latest": "3"}]}}
    doc = {"metadata": {"name": "mo", "namespace": "ns", "annotations": {"sextant.io/objectives": "latency=minimize"}},
           "spec": {"objective": {"type": "maximize", "objectiveMetricName": "accuracy"}},
           "status": {"currentOptimalTrial": {"bestTrialName": "fast"}, "paretoOptimalTrials": [member]}}
    lines: list[str] = []
    describe_experiment(doc, [], [], lines.append)
    assert "Pareto front: 1 trials (accuracy=maximize, latency=minimize)" in lines
    assert "  fast  accuracy=0.9, latency=3" in lines
    del doc["status"]["paretoOptimalTrials"]
    lines.clear()
    describe_experiment(doc, [], [], lines.append)
    assert not any("Pareto" in line for line in lines)


def test_table_alignment():
    assert table(["A", "BB"], [["xxx", 1]]).splitlines() == ["A     BB", "xxx   1"]


def test_logs_rejects_path_tricks(tmp_path):
    from sextant.cli.context import Context

    ctx = Context(data_dir=tmp_path)
    for bad in ("../etc", "a/b", "UPPER", ""):
        with pytest.raises(BadInput):
            job_dir(ctx, "default", bad)
    assert job_dir(ctx, "default", "trial-1") == tmp_path / "jobs" / "default" / "trial-1"


def test_follow_copies_until_the_job_ends(tmp_path):
    log, done = tmp_path / "output.log", tmp_path / "exit.json"
    log.write_bytes(b"line 1\nline 2\n")
    done.write_text("{}")
    out = io.BytesIO()
    follow(log, done, out)
    assert out.getvalue() == b"line 1\nline 2\n"
