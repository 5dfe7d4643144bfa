"""The Python SDK against a real local stack: the client calls and ``tune`` on small functions."""

from __future__ import annotations

import pytest

from sextant.sdk import (
    ExperimentFailed,
    ImageNotUsedWarning,
    SextantClient,
    build_tune_experiment,
    search,
    tune,
)
from sextant.store.interface import Invalid, NotFound
from tests.e2e.local_stack import GROUP, ROOT, local_stack_fixture  # noqa: F401 - the local_stack fixture

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(GROUP)]


def quadratic(parameters):
    """Importable objective: returns its score (reported by the runner)."""
    return -((parameters["x"] - 0.5) ** 2) - (parameters["units"] - 2) ** 2 / 10


def test_tune_an_importable_function_returns_typed_best_parameters(local_stack):
    with pytest.warns(ImageNotUsedWarning, match="resources_per_trial is not applied: without base_image"):
        best = tune(quadratic, {"x": search.double(0.0, 1.0), "units": search.int(1, 3)},
                    data_dir=local_stack.data_dir, name="sdk-tune-ref", objective_metric_name="score",
                    max_trial_count=4, parallel_trial_count=2, timeout=480, resources_per_trial={"cpu": "1"})
    assert set(best) == {"x", "units"}
    assert isinstance(best["x"], float) and 0.0 <= best["x"] <= 1.0
    assert isinstance(best["units"], int) and 1 <= best["units"] <= 3
    with SextantClient(data_dir=local_stack.data_dir) as client:
        trials = client.list_trials("sdk-tune-ref")
        assert len(trials) == 4
        optimal = client.get_optimal_hyperparameters("sdk-tune-ref")
        scores = [float(m.latest) for t in trials for m in t.status.observation.metrics if m.name == "score"]
        assert float(optimal.observation.metrics[0].max) == pytest.approx(max(scores))
        client.delete_experiment("sdk-tune-ref")


def test_tune_a_local_function_by_source_with_push(local_stack):
    def objective(parameters):  # shipped as source: imports inside
        from sextant.report import report_metrics

        value = {"a": 0.1, "b": 0.9, "c": 0.5}[parameters["letter"]] * parameters["scale"]
        report_metrics({"value": value})

    best = tune(objective, {"letter": search.categorical(["a", "b", "c"]), "scale": 2.0},
                data_dir=local_stack.data_dir, name="sdk-tune-src", objective_metric_name="value",
                algorithm_name="grid", max_trial_count=3, parallel_trial_count=3,
                metrics_collector_config={"kind": "Push"}, timeout=480)
    assert best == {"letter": "b"}
    with SextantClient(data_dir=local_stack.data_dir) as client:
        logs = client.get_trial_metrics(client.get_optimal_hyperparameters("sdk-tune-src").best_trial_name)
        assert [(m["name"], float(m["value"])) for m in logs] == [("value", pytest.approx(1.8))]
        client.delete_experiment("sdk-tune-src")


def test_client_create_wait_and_errors(local_stack):
    with SextantClient(data_dir=local_stack.data_dir) as client:
        # the example names an image, which this stack (runtime local) will not use: said at once
        with pytest.warns(ImageNotUsedWarning, match="experiment sobol: its trials name the image "
                          r"docker.io/kubeflowkatib/sextant-examples:latest, but this stack runs trials as local"):
            created = client.create_experiment(ROOT / "examples" / "v1beta1" / "sobol.yaml")
        assert created.metadata.name == "sobol" and created.metadata.namespace == "default"
        exp = client.wait_for_experiment("sobol", timeout=480)
        assert client.is_experiment_succeeded("sobol")
        assert exp.status.trials == exp.spec.max_trial_count
        assert [e.metadata.name for e in client.list_experiments()].count("sobol") == 1
        assert len(client.get_success_trial_details("sobol")) == exp.status.trials_succeeded
        client.delete_experiment("sobol")
        with pytest.raises(NotFound):
            client.get_experiment("sobol")
        bad = build_tune_experiment(quadratic, {"x": search.double(0, 1)}, data_dir=local_stack.data_dir,
                                    objective_metric_name="score", name="sdk-bad", max_trial_count=0)
        with pytest.raises(Invalid) as err:
            client.create_experiment(bad)
        assert any("maxTrialCount" in e for e in err.value.errors)


def test_wait_raises_when_the_experiment_fails(local_stack):
    def broken(parameters):
        raise RuntimeError("boom")

    with pytest.raises(ExperimentFailed):
        tune(broken, {"x": search.double(0, 1)}, data_dir=local_stack.data_dir, name="sdk-tune-fail",
             objective_metric_name="score", max_trial_count=2, max_failed_trial_count=0, timeout=480)
    with SextantClient(data_dir=local_stack.data_dir) as client:
        assert client.is_experiment_failed("sdk-tune-fail")
        client.delete_experiment("sdk-tune-fail")


def test_tune_stops_the_stack_it_started_and_runs_trials_where_it_was_called(tmp_path, monkeypatch, capsys):
    from sextant.stack import StackPaths, supervisor_running

    home = tmp_path / "home"  # no stack runs here: tune starts one
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "offset.txt").write_text("0.5")
    monkeypatch.chdir(workdir)

    def shifted(parameters):  # reads a file relative to where tune() was called
        with open("offset.txt") as f:
            return parameters["x"] + float(f.read())

    best = tune(shifted, {"x": search.double(0.0, 1.0)}, data_dir=home, name="sdk-own-stack",
                objective_metric_name="score", max_trial_count=1, timeout=300)
    err = capsys.readouterr().err
    assert set(best) == {"x"}
    assert f"tune: started a local Sextant stack in {home}" in err and "it stops when tune returns" in err
    assert f"tune: stopped the local Sextant stack it started in {home}" in err
    assert supervisor_running(StackPaths(home)) is None
