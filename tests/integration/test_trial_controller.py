"""Trial controller against a real DB manager (SQLite) and real local trial processes."""

from __future__ import annotations

import sys
import time

import grpc
import pytest

from services.trial_controller.__main__ import build_controller
from sextant.katib.condition_list import has_condition, set_condition
from sextant.resources.models import Trial
from sextant.runtime import process
from sextant.runtime.local import LocalRuntime
from sextant.store.interface import NotFound
from tests.integration.conftest import running_db_manager

pytestmark = pytest.mark.xdist_group("trial_controller")


@pytest.fixture()
def db_address(fresh_sqlite_url):
    with running_db_manager(fresh_sqlite_url, max_workers=32, poll_seconds=0.2) as running:
        yield running.address


@pytest.fixture()
def stack(tmp_path, db_address):
    from sextant.store.client import GrpcResourceStore

    address = db_address
    store = GrpcResourceStore(address)
    channel = grpc.insecure_channel(address)
    controllers = []

    def start_controller():
        rt = LocalRuntime(tmp_path / "data", db_manager_address=address, stop_grace=2)
        c = build_controller(store, rt, channel, db_manager_address=address, workers=2, resync_seconds=2,
                             custom_grace=1)
        c.start()
        controllers.append(c)
        return c, rt

    yield store, start_controller, tmp_path / "data"
    for c in controllers:
        c.stop()
    channel.close()
    store.close()


def _trial(name, code, *, kind="StdOut", retain=False, additional=("loss",)):
    return Trial.model_validate({
        "metadata": {"name": name, "namespace": "default", "labels": {"katib.kubeflow.org/experiment": "exp"}},
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "acc",
                          "additionalMetricNames": list(additional),
                          "metricStrategies": [{"name": "acc", "value": "max"},
                                               *[{"name": m, "value": "min"} for m in additional]]},
            "parameterAssignments": [{"name": "lr", "value": "0.1"}],
            "runSpec": {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
                        "spec": {"template": {"spec": {"containers": [
                            {"name": "main", "image": "x", "command": ["python", "-c", code]}]}}}},
            "primaryContainerName": "main", "retainRun": retain,
            "metricsCollector": {"collector": {"kind": kind}},
        }})


def _wait(store, name, predicate, timeout=40):
    deadline = time.monotonic() + timeout
    trial = None
    while time.monotonic() < deadline:
        try:
            trial = store.get("Trial", "default", name)
        except NotFound:
            trial = None
        if predicate(trial):
            return trial
        time.sleep(0.1)
    raise AssertionError(f"trial {name} never reached the expected state: "
                         f"{trial.status.model_dump() if trial else None}")


def _cond(t):
    return lambda trial: trial is not None and has_condition(trial.status.conditions, t)


def test_success_failure_unavailable_push(stack):
    store, start, data = stack
    start()
    store.create(_trial("ok", "print('acc=0.5 loss=3');print('acc=0.9');print('acc=0.7 loss=1')"))
    store.create(_trial("bad", "import sys; print('acc=0.9'); sys.exit(3)"))
    store.create(_trial("nometrics", "print('hello')"))
    store.create(_trial("push", "import sextant; sextant.report_metrics({'acc': 0.25, 'loss': 2})", kind="Push"))
    store.create(_trial("pushnone", "print('acc=1')", kind="Push"))

    ok = _wait(store, "ok", _cond("Succeeded"))
    metrics = {m.name: m for m in ok.status.observation.metrics}
    assert (metrics["acc"].min, metrics["acc"].max, metrics["acc"].latest) == ("0.5", "0.9", "0.7")
    assert (metrics["loss"].min, metrics["loss"].max, metrics["loss"].latest) == ("1", "3", "1")
    assert [c.type for c in ok.status.conditions if c.status == "True"] == ["Created", "Succeeded"]
    # Katib's order: Running flips to False before Succeeded is appended, so the last condition
    # (the one GetSuggestions reports) is the terminal one.
    assert ok.status.conditions[-1].type == "Succeeded"
    assert ok.status.completion_time and ok.status.start_time

    bad = _wait(store, "bad", _cond("Failed"))
    failed = [c for c in bad.status.conditions if c.type == "Failed"][0]
    assert bad.status.conditions[-1].type == "Failed"
    assert failed.reason == "TrialFailed. Job reason: Error"
    # The exit code, why the image was not used, and the end of the output.
    assert failed.message == (
        "Trial has failed. Job message: exit code 3. Note: the trial's image x was not used: the stack "
        "runs trials as local processes (`sextant up --runtime docker` runs them in their image)\n"
        "Last lines of output:\nacc=0.9")
    # ... and a Warning event said so when the trial started.
    events, _ = store.list("Event", "default")
    warned = [e.spec for e in events if e.spec["involvedObject"]["name"] == "bad"]
    assert [(e["type"], e["reason"]) for e in warned] == [("Warning", "ImageNotUsed")]
    assert "image x was not used" in warned[0]["message"]

    none = _wait(store, "nometrics", _cond("MetricsUnavailable"))
    acc = [m for m in none.status.observation.metrics if m.name == "acc"][0]
    assert none.status.conditions[-1].type == "MetricsUnavailable"
    assert acc.latest == "unavailable"
    # Katib's words, which metric never came from which collector, and what the trial printed.
    assert none.status.conditions[-1].message == ("Metrics are not available: the objective metric 'acc' was "
                                                  "never reported (StdOut collector)\nLast lines of output:\nhello")

    push = _wait(store, "push", _cond("Succeeded"))
    assert {m.name: m.latest for m in push.status.observation.metrics} == {"acc": "0.25", "loss": "2.0"}
    _wait(store, "pushnone", _cond("MetricsUnavailable"))
    # retainRun false: the job's files go once the trial is finished
    deadline = time.monotonic() + 10
    while (data / "jobs/default/ok").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (data / "jobs/default/ok").exists()


def test_killed_restart_and_delete(stack):
    store, start, data = stack
    controller, rt = start()
    slow = "import time\nprint('acc=0.1', flush=True)\ntime.sleep(3)\nprint('acc=0.3', flush=True)"
    store.create(_trial("slow", slow, retain=True))
    store.create(_trial("victim", "import time\nprint('acc=0.2', flush=True)\ntime.sleep(120)", retain=True))
    _wait(store, "slow", _cond("Running"))
    victim = _wait(store, "victim", _cond("Running"))
    # The controller dies while trials run; a new one re-adopts them (no second process).
    controller.stop()
    set_condition(victim.status.conditions, "Killed", "True", "TrialKilled", "Trial is killed")
    store.update_status(victim)
    start()
    slow_done = _wait(store, "slow", _cond("Succeeded"))
    assert [m.latest for m in slow_done.status.observation.metrics if m.name == "acc"] == ["0.3"]
    log = (data / "jobs/default/slow/output.log").read_text()
    assert log.count("acc=0.1") == 1
    killed = _wait(store, "victim", lambda t: t is not None and rt.job_status("default", "victim").phase == "Failed")
    assert rt.job_status("default", "victim").reason == "Killed"
    assert has_condition(killed.status.conditions, "Killed")
    assert not has_condition(killed.status.conditions, "Failed")
    store.delete("Trial", "default", "slow")
    deadline = time.monotonic() + 10
    while (data / "jobs/default/slow").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (data / "jobs/default/slow").exists()
    assert sys.executable


def test_a_trial_deleted_while_the_controller_is_down_has_its_job_stopped_and_removed(stack):
    store, start, data = stack
    controller, rt = start()
    sleeper = "import time\nprint('acc=0.2', flush=True)\ntime.sleep(120)"
    store.create(_trial("orphan", sleeper))
    store.create(_trial("kept", sleeper))
    _wait(store, "orphan", _cond("Running"))
    _wait(store, "kept", _cond("Running"))
    controller.stop()
    store.delete("Trial", "default", "orphan")  # no controller sees this deletion
    wrapper = process.ProcessId.from_dict(process.read_json(data / "jobs/default/orphan/job.json")["process"])
    assert process.is_alive(wrapper)
    start()  # the next controller finds the job without its trial at start
    deadline = time.monotonic() + 20
    while (data / "jobs/default/orphan").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (data / "jobs/default/orphan").exists()
    assert rt.job_status("default", "orphan").phase == "NotFound"
    assert not process.is_alive(wrapper)
    assert rt.job_status("default", "kept").phase == "Running"  # a live trial's job is left alone


def test_an_experiment_recreated_under_the_same_name_is_not_served_from_the_cache(stack):
    """The controller reads a trial's experiment for the collector's dialect. Deleting the
    experiment and creating it again with another trial template and API version must reach
    the new experiment's trials: "acc=.5" matches Katib's v1beta1 default filter only, so the
    first (v1alpha3) trial has no metrics and the second (v1beta1) one succeeds."""
    from services.experiment_controller.trials import owner_reference
    from sextant.resources.models import API_VERSION_V1ALPHA3, Experiment
    from sextant.resources.v1alpha3 import ORIGINAL_API_VERSION_ANNOTATION
    from tests.integration.experiment_controller_support import experiment_doc

    store, start, _ = stack
    start()

    def experiment(annotations, command):
        doc = experiment_doc("exp")
        doc["metadata"]["annotations"] = annotations
        doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]["command"] = command
        return store.create(Experiment.model_validate(doc))

    def trial_of(exp, name):
        trial = _trial(name, "print('acc=.5')")
        trial.metadata.owner_references = [owner_reference(exp)]
        return store.create(trial)

    old = experiment({ORIGINAL_API_VERSION_ANNOTATION: API_VERSION_V1ALPHA3},
                     ["python", "old.py", "--lr=${trialParameters.learningRate}"])
    trial_of(old, "first")
    _wait(store, "first", _cond("MetricsUnavailable"))

    store.delete("Experiment", "default", "exp")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            store.get("Experiment", "default", "exp")
        except NotFound:
            break
        time.sleep(0.1)
    new = experiment({}, ["python", "new.py", "--rate=${trialParameters.learningRate}"])
    assert new.metadata.uid != old.metadata.uid
    trial_of(new, "second")
    second = _wait(store, "second", _cond("Succeeded"))
    assert {m.name: m.latest for m in second.status.observation.metrics}["acc"] == ".5"
