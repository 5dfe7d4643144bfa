"""The web UI's pure parts: trial columns and best-so-far, parameter importance, error lines in
pasted YAML, trial logs read by offset, and the login redirect guard."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import pytest

from services.web_ui import local_files, summary
from services.web_ui.importance import parameter_importance
from services.web_ui.login import safe_next
from services.web_ui.yaml_lines import locate_errors
from sextant.resources.models import (
    AlgorithmSpec,
    Condition,
    EarlyStoppingSpec,
    Experiment,
    ResumePolicy,
    Trial,
    to_doc,
)


def _experiment(objective_type: str = "minimize", strategy: str | None = None) -> Experiment:
    objective = {"type": objective_type, "objectiveMetricName": "loss", "additionalMetricNames": ["acc"]}
    if strategy:
        objective["metricStrategies"] = [{"name": "loss", "value": strategy}]
    return Experiment.model_validate({
        "metadata": {"name": "e", "namespace": "ns"},
        "spec": {"objective": objective, "algorithm": {"algorithmName": "random"}, "maxTrialCount": 10,
                 "parameters": [
                     {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}},
                     {"name": "n", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "5"}},
                     {"name": "opt", "parameterType": "categorical", "feasibleSpace": {"list": ["a", "b"]}}]},
    })


def _trial(name: str, created: str, status: str, loss: tuple[float, float, float] | None,
           x: float = 0.5, n: int = 2, opt: str = "a") -> dict:
    """A trial document, as the store lists them for the experiment page (checked as a model)."""
    metrics = []
    if loss is not None:
        lo, hi, last = loss
        metrics = [{"name": "loss", "min": str(lo), "max": str(hi), "latest": str(last)},
                   {"name": "acc", "min": "0.1", "max": "0.9", "latest": "0.8"}]
    return to_doc(Trial.model_validate({
        "metadata": {"name": name, "namespace": "ns", "creationTimestamp": created,
                     "labels": {"katib.kubeflow.org/experiment": "e"}},
        "spec": {"parameterAssignments": [{"name": "x", "value": str(x)}, {"name": "n", "value": str(n)},
                                          {"name": "opt", "value": opt}]},
        "status": {"conditions": [{"type": "Created", "status": "True"},
                                  {"type": "Running", "status": "False"}, {"type": status, "status": "True"}],
                   "observation": {"metrics": metrics} if metrics else None},
    }))


def test_status_word_is_the_last_condition():
    exp = _experiment()
    assert summary.status_word(exp) == "Pending"
    exp.status.conditions = [Condition(type="Created"), Condition(type="Running", status="False"),
                             Condition(type="Succeeded")]
    assert summary.status_word(exp) == "Succeeded"


def test_a_shared_service_is_used_by_the_unfinished_experiments_of_its_algorithm():
    def exp(name: str, namespace: str = "ns", algorithm: str = "random", **spec) -> Experiment:
        e = _experiment()
        e.metadata.name, e.metadata.namespace = name, namespace
        return e.model_copy(update={"spec": e.spec.model_copy(update={
            "algorithm": AlgorithmSpec(algorithm_name=algorithm), **spec})})

    done = exp("done")
    done.status.conditions = [Condition(type="Created"), Condition(type="Succeeded")]
    stopping = exp("stops", early_stopping=EarlyStoppingSpec(algorithm_name="medianstop"))
    own = exp("own", resume_policy=ResumePolicy.FROM_VOLUME)  # keeps a service of its own
    users = summary.shared_service_users([exp("b"), exp("a", "other"), exp("t", algorithm="tpe"), done, stopping, own])
    assert users == {"random": [{"namespace": "ns", "name": "b"}, {"namespace": "other", "name": "a"}],
                     "tpe": [{"namespace": "ns", "name": "t"}],
                     "random-medianstop": [{"namespace": "ns", "name": "stops"}]}


def test_trials_table_orders_by_creation_and_tracks_the_best_that_counts():
    trials = [  # given out of order; a failed trial's value must not become the best
        _trial("t3", "2026-01-01T00:00:03Z", "Succeeded", (0.2, 0.9, 0.4), x=0.3, n=3, opt="b"),
        _trial("t1", "2026-01-01T00:00:01Z", "Succeeded", (0.5, 0.9, 0.6)),
        _trial("t2", "2026-01-01T00:00:02Z", "Failed", (0.01, 0.01, 0.01)),
        _trial("t4", "2026-01-01T00:00:04Z", "EarlyStopped", (0.1, 0.9, 0.7)),
        _trial("t5", "2026-01-01T00:00:05Z", "Running", None),
    ]
    table = summary.trials_table(_experiment(), trials)
    assert table["names"] == ["t1", "t2", "t3", "t4", "t5"]
    assert table["status"] == ["Succeeded", "Failed", "Succeeded", "EarlyStopped", "Running"]
    assert table["done"] == [True, True, True, True, False]  # the page's flags, so it spells no state
    assert table["failed"] == [False, True, False, False, False]
    assert table["objective"] == [0.5, 0.01, 0.2, 0.1, None]  # minimise → the metric's min
    assert table["best"] == [0.5, 0.5, 0.2, 0.1, 0.1]
    assert table["parameters"]["x"] == [0.5, 0.5, 0.3, 0.5, 0.5]
    assert table["parameters"]["n"] == [2.0, 2.0, 3.0, 2.0, 2.0]
    assert table["parameters"]["opt"] == ["a", "a", "b", "a", "a"]
    assert table["metrics"]["acc"] == [0.8, 0.8, 0.8, 0.8, None]


def test_objective_follows_the_metric_strategy_and_direction():
    trials = [_trial("t1", "2026-01-01T00:00:01Z", "Succeeded", (0.2, 0.9, 0.4))]
    assert summary.trials_table(_experiment("maximize"), trials)["objective"] == [0.9]
    assert summary.trials_table(_experiment("minimize", "latest"), trials)["objective"] == [0.4]


def test_experiment_summary_reads_the_best_value_and_counts():
    exp = _experiment()
    exp.status.conditions = [Condition(type="Created"), Condition(type="Running")]
    exp.status.trials_succeeded, exp.status.trials_failed = 3, 1
    exp.status.current_optimal_trial = exp.status.current_optimal_trial or None
    row = summary.experiment_summary(exp)
    assert (row["status"], row["succeeded"], row["failed"], row["max"], row["best"]) == ("Running", 3, 1, 10, None)
    assert row["finished"] is False


def test_importance_ranks_the_parameter_that_drives_the_objective():
    trials = []
    for i in range(30):
        x, n = (i * 7 % 30) / 29, 1 + i % 5
        loss = (x - 0.3) ** 2 * 10 + 0.001 * n  # x matters, n hardly
        trials.append(_trial(f"t{i:02d}", f"2026-01-01T00:00:{i:02d}Z", "Succeeded", (loss, loss, loss),
                             x=x, n=n, opt="ab"[i % 2]))
    result = parameter_importance(_experiment(), summary.trials_table(_experiment(), trials))
    assert result["trials"] == 30
    ranked = sorted(result["importance"], key=result["importance"].get, reverse=True)
    assert ranked[0] == "x"
    assert result["importance"]["x"] > 0.8


def test_importance_explains_when_there_are_too_few_trials():
    trials = [_trial("t1", "2026-01-01T00:00:01Z", "Succeeded", (1, 1, 1))]
    result = parameter_importance(_experiment(), summary.trials_table(_experiment(), trials))
    assert result["importance"] == {} and "at least" in result["reason"]


def test_errors_are_placed_on_the_line_of_their_field():
    text = ("apiVersion: kubeflow.org/v1beta1\nkind: Experiment\nmetadata:\n  name: e\nspec:\n"
            "  parameters:\n    - name: lr\n      parameterType: double\n      feasibleSpace:\n"
            "        min: '5'\n        max: '1'\n")
    errors = locate_errors(text, ["spec.parameters[0].feasibleSpace.min: must be below max",
                                  "spec.objective: is required", "document 1: invalid YAML at line 3, column 2: x",
                                  "no path here"])
    assert [e["line"] for e in errors] == [10, 5, 3, None]
    assert errors[0]["path"] == "spec.parameters[0].feasibleSpace.min"
    assert errors[3] == {"path": "", "message": "no path here", "line": None}


def test_trial_log_reads_from_an_offset_and_knows_when_it_is_done(tmp_path: Path):
    job = tmp_path / "jobs" / "ns" / "t1"
    job.mkdir(parents=True)
    (job / "output.log").write_text("one\ntwo\n")
    first = local_files.trial_log(tmp_path, "ns", "t1")
    assert (first["text"], first["offset"], first["done"], first["found"]) == ("one\ntwo\n", 8, False, True)
    with open(job / "output.log", "a") as f:
        f.write("three\n")
    (job / "exit.json").write_text(json.dumps({"code": 0}))
    second = local_files.trial_log(tmp_path, "ns", "t1", first["offset"])
    assert (second["text"], second["done"]) == ("three\n", True)
    archived = tmp_path / "logs" / "trials" / "ns"
    archived.mkdir(parents=True)
    (archived / "t2.log").write_text("kept\n")
    assert local_files.trial_log(tmp_path, "ns", "t2")["text"] == "kept\n"
    assert local_files.trial_log(tmp_path, "ns", "t3")["found"] is False
    with pytest.raises(ValueError):
        local_files.trial_log(tmp_path, "ns", "../t1")


def test_bundled_examples_are_listed_and_only_those_are_readable():
    ids = [e["id"] for e in local_files.list_examples()]
    assert "v1beta1/random.yaml" in ids and "v1alpha3/random-example.yaml" in ids
    assert "kind: Experiment" in (local_files.read_example("v1beta1/random.yaml") or "")
    assert local_files.read_example("../pyproject.toml") is None


@pytest.mark.parametrize("target,expected", [
    ("/ui/experiments/a/b", "/ui/experiments/a/b"), ("//evil.example/x", "/"),
    ("https://evil.example/", "/"), ("/\\evil", "/"), (None, "/"),
])
def test_login_only_redirects_within_the_server(target, expected):
    assert safe_next(target) == expected


def test_sextant_ui_prints_the_sign_in_url_of_the_running_stack(tmp_path: Path, capsys):
    from sextant.cli.main import main

    assert main(["--data-dir", str(tmp_path), "ui", "--print"]) == 1  # no stack: a clear error
    assert "sextant up" in capsys.readouterr().err
    (tmp_path / "token").write_text("tok-123\n")
    (tmp_path / "stack.json").write_text(json.dumps(
        {"services": {"api-server": {"address": "127.0.0.1:6443"}}}))
    assert main(["--data-dir", str(tmp_path), "ui", "--print"]) == 0
    assert capsys.readouterr().out.strip() == "https://127.0.0.1:6443/?token=tok-123"


def test_pareto_plot_data_lists_every_complete_trial_and_the_front():
    from services.web_ui.pareto_plot import pareto_data

    exp = Experiment.model_validate({
        "metadata": {"name": "mo", "namespace": "ns", "annotations": {"sextant.io/objectives": "ms=minimize"}},
        "spec": {"objective": {"type": "maximize", "objectiveMetricName": "acc", "additionalMetricNames": ["ms"],
                               "metricStrategies": [{"name": "acc", "value": "latest"},
                                                    {"name": "ms", "value": "latest"}]},
                 "algorithm": {"algorithmName": "nsga2"}, "parameters": []}})

    def trial(name, acc, ms):
        metrics = [{"name": "acc", "latest": acc}] + ([{"name": "ms", "latest": ms}] if ms else [])
        return Trial.model_validate({"metadata": {"name": name, "namespace": "ns"},
                                     "spec": {"parameterAssignments": [{"name": "n", "value": name[-1]}]},
                                     "status": {"observation": {"metrics": metrics}}})
    data = pareto_data(exp, [trial("t3", "0.7", "1"), trial("t1", "0.9", "5"), trial("t2", "0.8", "6"),
                             trial("t4", "0.99", None)])
    assert data["objectives"] == [{"name": "acc", "direction": "maximize"}, {"name": "ms", "direction": "minimize"}]
    assert data["names"] == ["t1", "t2", "t3"]  # t4 lacks ms
    assert data["values"] == {"acc": [0.9, 0.8, 0.7], "ms": [5.0, 6.0, 1.0]}
    assert data["parameters"] == ["n=1", "n=2", "n=3"]
    assert data["front"] == ["t1", "t3"]  # t2 is less accurate and slower than t1
    exp.metadata.annotations.clear()
    assert pareto_data(exp, [trial("t1", "0.9", "5")])["objectives"] == []


@pytest.mark.asyncio
async def test_plotly_is_served_compressed_cacheable_and_revalidated():
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from services.web_ui import static

    app = web.Application()
    static.add_routes(app)
    async with TestClient(TestServer(app)) as client:
        cartesian, full = static.plotly_urls()
        for url, path in [(full, static.plotly_js()), (cartesian, static.VENDOR / static.CARTESIAN_PLOTLY)]:
            reply = await client.get(url, headers={"Accept-Encoding": "gzip, br"})
            assert reply.status == 200 and reply.headers["Content-Encoding"] == "gzip"
            assert "immutable" in reply.headers["Cache-Control"]
            assert await reply.read() == path.read_bytes()  # the client undoes the gzip
        # Kept for a year, so each URL names its version; the vendored bundle is the plotly.js
        # version of the locked plotly package (static/vendor/README.md says how to update it).
        vendored = static.CARTESIAN_PLOTLY.removeprefix("plotly-cartesian-").removesuffix(".min.js")
        assert full.endswith(f"?v={version('plotly')}") and cartesian.endswith(f"-{vendored}.min.js")
        assert f"* plotly.js (cartesian - minified) v{vendored}\n" in (static.VENDOR / static.CARTESIAN_PLOTLY).read_text()[:200]
        assert f"* plotly.js v{vendored}\n" in static.plotly_js().read_text()[:200]
        plain = await client.get("/ui/static/app.js", headers={"Accept-Encoding": "identity"})
        assert "Content-Encoding" not in plain.headers and plain.headers["Cache-Control"] == "no-cache"
        again = await client.get("/ui/static/app.js", headers={"If-None-Match": plain.headers["ETag"]})
        assert again.status == 304
        assert (await client.get("/ui/static/..%2Fapi.py")).status == 404
