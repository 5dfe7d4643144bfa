"""The suggestion controller with real algorithm processes (LocalRuntime) and a real DB manager.

The experiment reconciler runs alongside (step by step) and the test plays the trial
controller, so whole experiments run without trial jobs.
"""

from __future__ import annotations

import os
import re
import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from services.experiment_controller.reconciler import ExperimentReconciler
from services.suggestion.controller.reconciler import SuggestionError, SuggestionReconciler
from sextant.algorithm_registry import Registry
from sextant.katib.experiment_status import REASON_FAILED, REASON_SUGGESTION_END
from sextant.katib.suggestion_status import EXHAUSTED as SUGGESTION_EXHAUSTED
from sextant.runtime import process
from sextant.runtime.base import OwnedService, ServiceSpec, ServiceStatus
from sextant.runtime.local import LocalRuntime

from .experiment_controller_support import (
    create_experiment,
    key,
    last_condition,
    set_trial,
    sqlite_backend_fixture,  # noqa: F401 - fixture db_backend (SQLite)
    store_fixture,  # noqa: F401 - fixture store
    trials_of,
)

pytestmark = pytest.mark.xdist_group("suggestion_controller")
HERE = Path(__file__).resolve().parent


@pytest.fixture
def runtime(tmp_path):
    rt = LocalRuntime(tmp_path / "rt", stop_grace=2.0)
    yield rt
    root = rt.root / "services"
    if root.exists():
        for ns_dir in root.iterdir():
            for svc in ns_dir.iterdir():
                rt.delete_service(ns_dir.name, svc.name)


def make_srec(store, runtime, registry=None):
    return SuggestionReconciler(store, runtime, registry or Registry.load(), db_manager_address="db.example:6789",
                                call_timeout=30.0, not_ready_requeue=0.1)


def drive(srec, name="exp", until=None, timeout=60.0):
    """Reconciles the Suggestion until ``until()`` holds (retrying errors, as the framework does)."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            result = srec.reconcile(key(name))
            last_error = None
        except SuggestionError as err:
            last_error, result = err, None
        if until is None or until():
            return last_error
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached; last error: {last_error}")
        time.sleep(result.requeue_after if result and result.requeue_after else 0.1)


def suggestion(store, name="exp"):
    return store.get("Suggestion", "default", name)


def count_is(store, n, name="exp"):
    return lambda: suggestion(store, name).status.suggestion_count == n


def finish_active(store, name="exp", acc=0.5):
    for t in trials_of(store, name):
        if not t.status.conditions:
            set_trial(store, t.metadata.name, "Succeeded", acc=acc)


def test_random_service_assignments_and_teardown(store, runtime):
    create_experiment(store, parallelTrialCount=3, maxTrialCount=5)
    erec, srec = ExperimentReconciler(store), make_srec(store, runtime)
    erec.reconcile(key())
    drive(srec, until=count_is(store, 3))
    sugg = suggestion(store)
    names = [a.name for a in sugg.status.suggestions]
    assert all(re.fullmatch(r"exp-[a-z0-9]{8}", n) for n in names) and len(set(names)) == 3
    for a in sugg.status.suggestions:
        assert 0.01 <= float(a.parameter_assignments[0].value) <= 0.05
    status = {c.type: (c.status, c.reason) for c in sugg.status.conditions}
    assert status["Created"] == ("True", "SuggestionCreated")
    assert status["DeploymentReady"] == ("True", "DeploymentReady")
    assert status["Running"] == ("True", "SuggestionRunning")
    assert runtime.service_status("default", "exp-random").ready

    erec.reconcile(key())
    finish_active(store)
    erec.reconcile(key())
    assert suggestion(store).spec.requests == 5
    drive(srec, until=count_is(store, 5))
    erec.reconcile(key())
    finish_active(store)
    erec.reconcile(key())
    assert last_condition(store.get("Experiment", "default", "exp"))[0] == "Succeeded"
    assert last_condition(suggestion(store))[0] == "Succeeded"
    srec.reconcile(key())
    assert not runtime.service_status("default", "exp-random").exists


def test_validation_rejection_fails_suggestion_and_experiment(store, runtime):
    create_experiment(store, algorithm={"algorithmName": "grid"}, parallelTrialCount=2, maxTrialCount=50,
                      parameters=[{"name": "lr", "parameterType": "double",
                                   "feasibleSpace": {"min": "0.01", "max": "0.05", "step": "0.01"}}])
    erec, srec = ExperimentReconciler(store), make_srec(store, runtime)
    erec.reconcile(key())
    drive(srec, until=lambda: last_condition(suggestion(store))[0] == "Failed")
    cond = suggestion(store).status.conditions[-1]
    assert cond.reason == "SuggestionFailed" and cond.message.startswith("Validation failed: ")
    assert "Max Trial Count" in cond.message
    assert suggestion(store).status.suggestion_count == 0
    assert not runtime.service_status("default", "exp-grid").exists
    erec.reconcile(key())
    exp = store.get("Experiment", "default", "exp")
    assert last_condition(exp) == ("Failed", REASON_FAILED)



def test_an_algorithm_service_refusing_the_controllers_token_is_not_taken_as_valid_settings(store, runtime,
                                                                                           monkeypatch):
    """The service (started with the stack's token) refuses a controller holding another token:
    the settings' validation fails with that (retried), instead of passing as "valid" and
    leaving the failure to GetSuggestions."""
    monkeypatch.setenv("SEXTANT_TOKEN", "the-services-token")  # inherited by the service process
    create_experiment(store, parallelTrialCount=2, maxTrialCount=6)
    erec = ExperimentReconciler(store)
    srec = SuggestionReconciler(store, runtime, Registry.load(), db_manager_address="db.example:6789",
                                token="another-token", call_timeout=30.0, not_ready_requeue=0.1)
    erec.reconcile(key())
    error = drive(srec, until=lambda: bool(srec._channels))  # the first call to the service was made
    assert error is not None and str(error).startswith("validation at ") and "UNAUTHENTICATED" in str(error)
    assert suggestion(store).status.suggestion_count == 0

def test_grid_exhaustion_ends_experiment_with_every_point(store, runtime):
    create_experiment(store, algorithm={"algorithmName": "grid"}, parallelTrialCount=2, maxTrialCount=None,
                      parameters=[{"name": "lr", "parameterType": "double",
                                   "feasibleSpace": {"min": "0.01", "max": "0.05", "step": "0.01"}}])
    erec, srec = ExperimentReconciler(store), make_srec(store, runtime)
    for _ in range(40):
        erec.reconcile(key())
        exp = store.get("Experiment", "default", "exp")
        if last_condition(exp)[0] in ("Succeeded", "Failed"):
            break
        drive(srec, until=lambda: (suggestion(store).status.suggestion_count >= suggestion(store).spec.requests
                                   or any(c.type == SUGGESTION_EXHAUSTED for c in suggestion(store).status.conditions)))
        erec.reconcile(key())
        finish_active(store, acc=0.3)
    exp = store.get("Experiment", "default", "exp")
    assert last_condition(exp) == ("Succeeded", REASON_SUGGESTION_END)
    values = sorted(float(t.spec.parameter_assignments[0].value) for t in trials_of(store))
    assert values == pytest.approx([0.01, 0.02, 0.03, 0.04, 0.05])  # every point once, none lost
    assert last_condition(suggestion(store))[0] == "Succeeded"


def test_killed_service_is_recreated_and_revalidated(store, runtime):
    create_experiment(store, parallelTrialCount=2, maxTrialCount=6)
    erec, srec = ExperimentReconciler(store), make_srec(store, runtime)
    erec.reconcile(key())
    drive(srec, until=count_is(store, 2))
    state = process.read_json(runtime.root / "services" / "default" / "exp-random" / "state.json")
    old_address = state["address"]
    os.killpg(state["main"]["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process.is_alive(process.ProcessId.from_dict(state["main"])) and time.monotonic() < deadline:
        time.sleep(0.05)
    erec.reconcile(key())
    finish_active(store)
    erec.reconcile(key())
    assert suggestion(store).spec.requests == 4
    drive(srec, until=count_is(store, 4))
    new_state = process.read_json(runtime.root / "services" / "default" / "exp-random" / "state.json")
    assert new_state["main"]["pid"] != state["main"]["pid"]
    assert srec._validated[key()] == new_state["address"] != old_address
    names = [a.name for a in suggestion(store).status.suggestions]
    assert len(set(names)) == 4


def custom_registry(tmp_path) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump({"suggestions": [{
        "algorithmName": "my-algo",
        "command": ["{python}", str(HERE / "custom_algorithm_server.py"), "--port", "{port}"],
    }, {
        "algorithmName": "random",
        "command": ["{python}", "-m", "services.suggestion.algorithms", "--algorithm", "random",
                    "--port", "{port}"],
    }], "earlyStoppings": [{
        "algorithmName": "my-es",
        "command": ["{python}", str(HERE / "custom_algorithm_server.py"), "--port", "{port}"],
    }]}))
    return path


def test_user_registered_custom_algorithm(store, runtime, tmp_path, monkeypatch):
    path = custom_registry(tmp_path)
    monkeypatch.setenv("SEXTANT_REGISTRY", str(path))  # admission accepts the custom name
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")]))
    create_experiment(store, algorithm={"algorithmName": "my-algo"}, parallelTrialCount=2, maxTrialCount=4)
    erec, srec = ExperimentReconciler(store), make_srec(store, runtime, Registry.load(path))
    erec.reconcile(key())
    drive(srec, until=count_is(store, 2))
    sugg = suggestion(store)
    assert [a.name for a in sugg.status.suggestions] == ["exp-custom-0", "exp-custom-1"]
    assert sugg.status.suggestions[0].labels == {"made-by": "custom"}
    assert {s.name: s.value for s in sugg.status.algorithm_settings} == {"calls": "1", "seen_trials": "0"}
    erec.reconcile(key())
    trials = trials_of(store)
    assert [t.metadata.name for t in trials] == ["exp-custom-0", "exp-custom-1"]
    assert trials[0].metadata.labels["made-by"] == "custom"
    finish_active(store)
    erec.reconcile(key())
    drive(srec, until=count_is(store, 4))
    sugg = suggestion(store)
    # the overlay went back to the service: it counted its calls and saw both trials
    assert {s.name: s.value for s in sugg.status.algorithm_settings} == {"calls": "2", "seen_trials": "2"}
    assert [a.name for a in sugg.status.suggestions][2:] == ["exp-custom-2", "exp-custom-3"]


def test_wrong_count_reply_stores_nothing(store, runtime, tmp_path, monkeypatch):
    path = custom_registry(tmp_path)
    monkeypatch.setenv("SEXTANT_REGISTRY", str(path))
    create_experiment(store, algorithm={"algorithmName": "my-algo",
                                        "algorithmSettings": [{"name": "short", "value": "1"}]},
                      parallelTrialCount=2, maxTrialCount=4)
    erec, srec = ExperimentReconciler(store), make_srec(store, runtime, Registry.load(path))
    erec.reconcile(key())
    drive(srec, until=lambda: any(c.type == "Running" for c in suggestion(store).status.conditions))
    with pytest.raises(SuggestionError, match="unexpected trials"):
        srec.reconcile(key())
    sugg = suggestion(store)
    assert sugg.status.suggestion_count == 0 and sugg.status.suggestions == []
    assert sugg.status.algorithm_settings == []


def test_custom_algorithm_rejection_message_reaches_the_suggestion(store, runtime, tmp_path, monkeypatch):
    path = custom_registry(tmp_path)
    monkeypatch.setenv("SEXTANT_REGISTRY", str(path))
    create_experiment(store, algorithm={"algorithmName": "my-algo",
                                        "algorithmSettings": [{"name": "reject", "value": "1"}]})
    erec, srec = ExperimentReconciler(store), make_srec(store, runtime, Registry.load(path))
    erec.reconcile(key())
    drive(srec, until=lambda: last_condition(suggestion(store))[0] == "Failed")
    assert suggestion(store).status.conditions[-1].message == \
        "Validation failed: custom algorithm rejects setting 'reject'"


def test_get_suggestions_rejection_fails_suggestion_and_experiment_at_once(store, runtime, tmp_path, monkeypatch):
    """INVALID_ARGUMENT from GetSuggestions is terminal (issue 21): no retry every 30 s with the
    experiment left in Created; both resources fail with the algorithm's reason and the
    service is stopped."""
    path = custom_registry(tmp_path)
    monkeypatch.setenv("SEXTANT_REGISTRY", str(path))
    create_experiment(store, algorithm={"algorithmName": "my-algo",
                                        "algorithmSettings": [{"name": "refuse", "value": "1"}]})
    erec, srec = ExperimentReconciler(store), make_srec(store, runtime, Registry.load(path))
    erec.reconcile(key())
    error = drive(srec, until=lambda: last_condition(suggestion(store))[0] == "Failed")
    assert error is None  # failed in a pass, not raised for a retry
    cond = suggestion(store).status.conditions[-1]
    assert cond.reason == "SuggestionFailed"
    assert cond.message == "GetSuggestions rejected the experiment: high is out of bounds for int64"
    assert not runtime.service_status("default", "exp-my-algo").exists
    erec.reconcile(key())
    exp = store.get("Experiment", "default", "exp")
    assert last_condition(exp) == ("Failed", REASON_FAILED)
    assert exp.status.conditions[-1].message.endswith("high is out of bounds for int64")
    assert srec.reconcile(key()) is None  # terminal: nothing is started again
    assert not runtime.service_status("default", "exp-my-algo").exists


def test_custom_early_stopping_rules_attached_to_every_assignment(store, runtime, tmp_path, monkeypatch):
    path = custom_registry(tmp_path)
    monkeypatch.setenv("SEXTANT_REGISTRY", str(path))
    create_experiment(store, algorithm={"algorithmName": "my-algo"}, earlyStopping={"algorithmName": "my-es"},
                      parallelTrialCount=2, maxTrialCount=4)
    erec, srec = ExperimentReconciler(store), make_srec(store, runtime, Registry.load(path))
    erec.reconcile(key())
    drive(srec, until=count_is(store, 2))
    state = runtime.service_status("default", "exp-my-algo")
    assert state.ready and state.early_stopping_address and state.early_stopping_address != state.address
    for a in suggestion(store).status.suggestions:
        rules = [(r.name, r.value, r.comparison, r.start_step) for r in a.early_stopping_rules]
        assert rules == [("acc", "0.5", "less", 2), ("db", "db.example:6789", "equal", 0)]
    erec.reconcile(key())
    trial = trials_of(store)[0]
    assert [r.name for r in trial.spec.early_stopping_rules] == ["acc", "db"]


class _KatibsServices(LocalRuntime):
    """Real local services whose status names another DB manager for early stopping, as the
    Kubernetes runtime's does for an algorithm Deployment Katib's controller created."""

    def ensure_service(self, spec: ServiceSpec) -> ServiceStatus:
        return replace(super().ensure_service(spec), db_manager_address="katib-db-manager.kubeflow:6789")


def test_early_stopping_is_given_the_db_manager_address_the_service_status_names(store, tmp_path, monkeypatch):
    path = custom_registry(tmp_path)
    monkeypatch.setenv("SEXTANT_REGISTRY", str(path))
    create_experiment(store, algorithm={"algorithmName": "my-algo"}, earlyStopping={"algorithmName": "my-es"},
                      parallelTrialCount=2, maxTrialCount=4)
    runtime = _KatibsServices(tmp_path / "rt", stop_grace=2.0)
    try:
        erec, srec = ExperimentReconciler(store), make_srec(store, runtime, Registry.load(path))
        erec.reconcile(key())
        drive(srec, until=count_is(store, 2))
        # The custom early-stopping server echoes the db_manager_address it was sent as rule "db".
        for a in suggestion(store).status.suggestions:
            assert {r.name: r.value for r in a.early_stopping_rules}["db"] == "katib-db-manager.kubeflow:6789"
    finally:
        runtime.delete_service("default", "exp-my-algo")


def test_early_stopping_validation_rejection(store, runtime, tmp_path, monkeypatch):
    path = custom_registry(tmp_path)
    monkeypatch.setenv("SEXTANT_REGISTRY", str(path))
    create_experiment(store, algorithm={"algorithmName": "my-algo"},
                      earlyStopping={"algorithmName": "my-es", "algorithmSettings": [{"name": "reject", "value": "1"}]})
    erec, srec = ExperimentReconciler(store), make_srec(store, runtime, Registry.load(path))
    erec.reconcile(key())
    drive(srec, until=lambda: last_condition(suggestion(store))[0] == "Failed")
    assert suggestion(store).status.conditions[-1].message == \
        "Validation failed: custom early stopping rejects 'reject'"



def test_both_controllers_threaded_with_restarts_mid_experiment(store, runtime):
    """Both controllers as threads on informers; each is stopped and replaced mid-experiment."""
    import threading

    from services.experiment_controller.__main__ import build_controller as build_exp
    from services.suggestion.controller.__main__ import build_controller as build_sugg

    from .experiment_controller_support import wait_for

    create_experiment(store, parallelTrialCount=3, maxTrialCount=9)
    registry = Registry.load()

    def new_sugg():
        return build_sugg(store, runtime, registry, db_manager_address="127.0.0.1:1", workers=2,
                          resync_seconds=2, call_timeout=30)

    stop_player = threading.Event()

    def trial_player():  # finishes every new trial (plays the trial controller)
        while not stop_player.wait(0.1):
            try:
                finish_active(store, acc=0.4)
            except Exception:  # noqa: BLE001 - racing the experiment controller: next round
                pass

    exp_c, sugg_c = build_exp(store, workers=2, resync_seconds=2), new_sugg()
    player = threading.Thread(target=trial_player, daemon=True)
    exp_c.start()
    sugg_c.start()
    player.start()
    try:
        wait_for(lambda: len(trials_of(store)) >= 3, timeout=60)
        sugg_c.stop()  # suggestion controller restart
        sugg_c = new_sugg()
        sugg_c.start()
        wait_for(lambda: len(trials_of(store)) >= 6, timeout=60)
        exp_c.stop()  # experiment controller restart
        exp_c = build_exp(store, workers=2, resync_seconds=2)
        exp_c.start()
        wait_for(lambda: last_condition(store.get("Experiment", "default", "exp"))[0] == "Succeeded",
                 timeout=90)
        wait_for(lambda: not runtime.service_status("default", "exp-random").exists, timeout=30)
    finally:
        stop_player.set()
        player.join(5)
        exp_c.stop()
        sugg_c.stop()
    names = [t.metadata.name for t in trials_of(store)]
    assert len(names) == len(set(names)) == 9
    sugg = suggestion(store)
    assert sorted(a.name for a in sugg.status.suggestions) == sorted(names)
    exp = store.get("Experiment", "default", "exp")
    assert exp.status.trials_succeeded == 9 and exp.status.conditions[-1].reason == "ExperimentMaxTrialsReached"


def test_from_volume_keeps_state_dir_and_resumes_after_restart(store, runtime):
    create_experiment(store, parallelTrialCount=1, maxTrialCount=1, resumePolicy="FromVolume")
    erec, srec = ExperimentReconciler(store), make_srec(store, runtime)
    erec.reconcile(key())
    drive(srec, until=count_is(store, 1))
    data = runtime.root / "services" / "default" / "exp-random" / "data"
    (data / "marker").write_text("algorithm state")
    erec.reconcile(key())
    finish_active(store)
    erec.reconcile(key())
    assert last_condition(suggestion(store))[0] == "Succeeded"
    srec.reconcile(key())
    assert not runtime.service_status("default", "exp-random").exists
    assert (data / "marker").read_text() == "algorithm state"  # the "volume" survives
    exp = store.get("Experiment", "default", "exp")
    exp.spec.max_trial_count = 2
    store.update(exp)
    erec.reconcile(key())
    assert suggestion(store).spec.requests == 2
    drive(srec, until=count_is(store, 2))
    assert runtime.service_status("default", "exp-random").ready
    assert (data / "marker").exists()
    assert last_condition(suggestion(store)) == ("Running", "SuggestionRunning")


class _LaggingInformer:
    """An informer cache that has not seen a deletion yet (the window after a delete)."""

    def __init__(self, stale):
        self.stale = stale

    def has_synced(self) -> bool:
        return True

    def get(self, namespace, name):
        return self.stale


def test_deleted_experiments_service_is_stopped_and_never_restarted(store, runtime):
    """Issue 21: after the experiment is deleted, a pass that still sees its Suggestion (a
    lagging cache, a requeued retry) must stop the service, not start a new one."""
    create_experiment(store, parallelTrialCount=1, maxTrialCount=3)
    erec, srec = ExperimentReconciler(store), make_srec(store, runtime)
    erec.reconcile(key())
    drive(srec, until=count_is(store, 1))
    stale = suggestion(store)
    service = process.ProcessId.from_dict(
        process.read_json(runtime.root / "services/default/exp-random/state.json")["main"])
    store.delete("Experiment", "default", "exp")
    srec.suggestions.informer = _LaggingInformer(stale)
    for _ in range(3):
        assert srec.reconcile(key()) is None
    assert not runtime.service_status("default", "exp-random").exists
    assert not process.is_alive(service)


def test_service_of_an_experiment_deleted_while_the_controller_is_down_is_stopped(store, runtime):
    """Nothing would ever reconcile a Suggestion deleted while no controller ran: the next
    controller finds the runtime's service without its Suggestion at start and removes it."""
    from services.suggestion.controller.__main__ import build_controller

    from .experiment_controller_support import wait_for

    erec, srec = ExperimentReconciler(store), make_srec(store, runtime)
    for name in ("gone", "kept"):
        create_experiment(store, name=name, parallelTrialCount=1, maxTrialCount=3)
        erec.reconcile(key(name))
        drive(srec, name=name, until=count_is(store, 1, name=name))
    state = process.read_json(runtime.root / "services/default/gone-random/state.json")
    service = process.ProcessId.from_dict(state["main"])
    assert process.is_alive(service)
    store.delete("Experiment", "default", "gone")  # its Suggestion goes with it; no controller runs
    controller = build_controller(store, runtime, Registry.load(), db_manager_address="127.0.0.1:1",
                                  workers=1, resync_seconds=60, call_timeout=30)
    controller.start()
    try:
        wait_for(lambda: not (runtime.root / "services/default/gone-random").exists(), timeout=30)
    finally:
        controller.stop()
    assert not process.is_alive(service)
    assert runtime.service_status("default", "kept-random").ready  # a live experiment's is left alone


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def shared_srec(store, runtime, clock, idle=60.0):
    from services.suggestion.controller.shared_services import Placement, ServiceMode

    placement = Placement(ServiceMode.SHARED, idle_seconds=idle, clock=clock)
    return SuggestionReconciler(store, runtime, Registry.load(), db_manager_address="db.example:6789",
                                call_timeout=30.0, not_ready_requeue=0.1, placement=placement)


def _shared_pid(runtime, name="random"):
    state = process.read_json(runtime.root / f"services/sextant-system/{name}/state.json")
    return process.ProcessId.from_dict(state["main"]) if state else None


def test_experiments_share_one_algorithm_service_until_it_is_idle(store, runtime):
    """Shared mode: one process serves both experiments; the one that ends leaves it to the
    other; once no live experiment used it for the idle period it is stopped, and a pass for a
    deleted experiment never starts it again."""
    clock = _Clock()
    erec, srec = ExperimentReconciler(store), shared_srec(store, runtime, clock)
    for name in ("a", "b"):
        create_experiment(store, name=name, parallelTrialCount=2, maxTrialCount=2)
        erec.reconcile(key(name))
    srec.reconcile(key("a"))  # the service was just started: it cannot answer yet
    starting = suggestion(store, "a").status.conditions[-1]
    assert (starting.type, starting.status, starting.reason) == ("DeploymentReady", "False", "DeploymentNotReady")
    assert re.match(r"Deployment is not ready: the algorithm service sextant-system/random is starting "
                    r"\(\d+ s so far\)", starting.message)
    erec.reconcile(key("a"))
    created = store.get("Experiment", "default", "a").status.conditions[-1]
    assert created.type == "Created" and created.message.startswith("Experiment is created; Deployment is not ready")
    for name in ("a", "b"):
        drive(srec, name=name, until=count_is(store, 2, name=name))
    erec.reconcile(key("a"))
    assert store.get("Experiment", "default", "a").status.conditions[-1].message == "Experiment is created"
    assert runtime.owned_services() == [OwnedService("sextant-system", "random", "")]
    assert not (runtime.root / "services/default").exists()
    pid = _shared_pid(runtime)

    for t in trials_of(store, "a"):  # a ends; b still runs
        set_trial(store, t.metadata.name, "Succeeded", acc=0.5)
    erec.reconcile(key("a"))
    erec.reconcile(key("a"))
    assert last_condition(suggestion(store, "a"))[0] == "Succeeded"
    srec.reconcile(key("a"))
    clock.now += 3600
    assert srec.stop_idle_services() == []  # b uses it
    assert process.is_alive(pid)

    stale = suggestion(store, "b")
    store.delete("Experiment", "default", "b")
    srec.suggestions.informer = _LaggingInformer(stale)
    assert srec.reconcile(key("b")) is None
    assert process.is_alive(pid)  # a deletion leaves a shared service to the idle rule
    srec.suggestions.informer = None
    clock.now += 59
    assert srec.stop_idle_services() == []
    clock.now += 2
    assert srec.stop_idle_services() == ["random"]
    assert not process.is_alive(pid) and runtime.owned_services() == []
    srec.suggestions.informer = _LaggingInformer(stale)
    assert srec.reconcile(key("b")) is None
    assert runtime.owned_services() == []  # never started again for the deleted experiment


def test_shared_service_is_readopted_by_a_restarted_controller(store, runtime):
    """A new controller (fresh memory) uses the running shared service, and gives it a whole
    idle period from first sight before stopping it."""
    erec = ExperimentReconciler(store)
    create_experiment(store, name="a", parallelTrialCount=1, maxTrialCount=3)
    erec.reconcile(key("a"))
    drive(shared_srec(store, runtime, _Clock()), name="a", until=count_is(store, 1, name="a"))
    pid = _shared_pid(runtime)

    clock = _Clock()
    restarted = shared_srec(store, runtime, clock, idle=30.0)
    erec.reconcile(key("a"))
    finish_active(store, "a")
    erec.reconcile(key("a"))
    drive(restarted, name="a", until=count_is(store, 2, name="a"))
    assert _shared_pid(runtime) == pid  # re-adopted, not started again
    store.delete("Experiment", "default", "a")
    restarted.suggestions.informer = None
    after_restart = shared_srec(store, runtime, clock, idle=30.0)
    assert after_restart.stop_idle_services() == []  # first sight: the idle period starts now
    clock.now += 31
    assert after_restart.stop_idle_services() == ["random"]
    assert not process.is_alive(pid)


def test_trials_of_a_shared_service_find_its_early_stopping_server(store, runtime, tmp_path, monkeypatch):
    """Shared mode: the algorithm + early-stopping pair runs as sextant-system/<algo>-<es>, and
    the trial controller hands that early-stopping address to the trial's collector."""
    import grpc

    from services.trial_controller.reconciler import TrialReconciler

    path = custom_registry(tmp_path)
    monkeypatch.setenv("SEXTANT_REGISTRY", str(path))
    create_experiment(store, algorithm={"algorithmName": "my-algo"}, earlyStopping={"algorithmName": "my-es"},
                      parallelTrialCount=2, maxTrialCount=4)
    erec = ExperimentReconciler(store)
    srec = shared_srec(store, runtime, _Clock())
    srec.registry = Registry.load(path)
    erec.reconcile(key())
    drive(srec, until=count_is(store, 2))
    shared = runtime.service_status("sextant-system", "my-algo-my-es")
    assert shared.ready and shared.early_stopping_address
    assert not runtime.service_status("default", "exp-my-algo").exists
    erec.reconcile(key())
    trial = trials_of(store)[0]
    assert trial.spec.early_stopping_rules
    with grpc.insecure_channel("127.0.0.1:1") as channel:
        trec = TrialReconciler(store, runtime, channel)
        assert trec._early_stopping_address(trial) == shared.early_stopping_address

