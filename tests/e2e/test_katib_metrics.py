"""Katib's controller metrics, scraped from the real controllers of a local stack after real
experiments: the experiment controller's ``katib_experiment_*`` and the trial controller's
``katib_trial_*`` series, by namespace (and status for the ``*_current`` gauges), and nothing
but 404 on any other path of the metrics port. The experiments run in a namespace of their own,
so the numbers are exact although other tests share the stack."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.local_stack import GROUP, local_stack_fixture  # noqa: F401 - the local_stack fixture
from tests.experiments import small_experiment

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(GROUP)]

NS = "katib-metrics"


def scrape(local_stack, service: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    state = json.loads((local_stack.data_dir / "stack.json").read_text())
    port = state["services"][service]["metrics_port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name.startswith("katib_") and s.labels.get("namespace") == NS}


def sample(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted({"namespace": NS, **labels}.items()))


def apply(local_stack, tmp_path, name: str, code: str, max_trials: int, namespace: str = NS) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(small_experiment(name, ["python", "-c", code], goal=5.0, max_trials=max_trials,
                                     parallel=max_trials, max_failed=1, parameters=[("x", "double", "0.1", "0.9")]))
    result = local_stack.sextant("apply", "-n", namespace, "-f", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_controllers_export_katibs_experiment_and_trial_metrics(local_stack, tmp_path):
    apply(local_stack, tmp_path, "metrics-ok", "print('score=${trialParameters.x}')", max_trials=2)
    apply(local_stack, tmp_path, "metrics-bad", "import sys; sys.exit(3)  # ${trialParameters.x}", max_trials=1)
    for name, condition in (("metrics-ok", "Succeeded"), ("metrics-bad", "Failed")):
        waited = local_stack.sextant("wait", "-n", NS, "experiment", name, f"--for=condition={condition}",
                                     "--timeout=4m", timeout=300)
        assert waited.returncode == 0, waited.stdout + waited.stderr

    experiments = scrape(local_stack, "experiment-controller")
    assert experiments[sample("katib_experiment_created_total")] == 2
    assert experiments[sample("katib_experiment_succeeded_total")] == 1
    assert experiments[sample("katib_experiment_failed_total")] == 1
    assert experiments[sample("katib_experiments_current", status="Succeeded")] == 1
    assert experiments[sample("katib_experiments_current", status="Failed")] == 1
    trials = scrape(local_stack, "trial-controller")
    assert trials[sample("katib_trial_created_total")] == 3
    assert trials[sample("katib_trial_succeeded_total")] == 2
    assert trials[sample("katib_trial_failed_total")] == 1
    assert trials.get(sample("katib_trial_metrics_unavailable_total"), 0) == 0
    assert trials[sample("katib_trials_current", status="Succeeded")] == 2
    assert trials[sample("katib_trials_current", status="Failed")] == 1

    assert local_stack.sextant("delete", "-n", NS, "experiment", "metrics-ok").returncode == 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        experiments = scrape(local_stack, "experiment-controller")
        trials = scrape(local_stack, "trial-controller")
        if experiments.get(sample("katib_experiment_deleted_total")) == 1 and \
                trials.get(sample("katib_trial_deleted_total")) == 2:
            break
        time.sleep(0.3)
    assert experiments.get(sample("katib_experiment_deleted_total")) == 1
    assert trials.get(sample("katib_trial_deleted_total")) == 2
    assert experiments.get(sample("katib_experiments_current", status="Succeeded")) is None

    # The metrics port answers /metrics only.
    port = json.loads((local_stack.data_dir / "stack.json").read_text())["services"]["trial-controller"]["metrics_port"]
    with pytest.raises(urllib.error.HTTPError) as elsewhere:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10)
    assert elsewhere.value.code == 404


def test_an_image_that_is_not_used_is_said_once_per_experiment(local_stack, tmp_path):
    # Its own namespace: the metrics test above counts exactly in NS.
    apply(local_stack, tmp_path, "image-note", "print('score=${trialParameters.x}')", max_trials=2,
          namespace="image-note")
    waited = local_stack.sextant("wait", "-n", "image-note", "experiment", "image-note", "--for=condition=Succeeded",
                                 "--timeout=4m", timeout=300)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    described = local_stack.sextant("describe", "-n", "image-note", "experiment", "image-note")
    assert described.stdout.count("ImageNotUsed") == 1, described.stdout
    assert "the trial's image local was not used: the stack runs trials as local processes" in described.stdout
