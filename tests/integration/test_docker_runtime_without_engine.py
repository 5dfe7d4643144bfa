"""The Docker runtime when no engine answers (a socket nobody listens on), with the real trial
controller and DB manager: ``auto`` runs a trial that names an image as a local process and
says its image was not used; ``docker`` fails it with a message saying why. Trials without an
image run locally either way."""

from __future__ import annotations

import docker
import grpc
import pytest

from services.trial_controller.__main__ import build_controller
from sextant.katib.condition_list import has_condition
from sextant.runtime import make_runtime
from tests.integration.conftest import running_db_manager
from tests.integration.test_trial_controller import _trial, _wait

pytestmark = pytest.mark.xdist_group("trial_controller")


@pytest.fixture()
def start(tmp_path, fresh_sqlite_url):
    from sextant.store.client import GrpcResourceStore

    with running_db_manager(fresh_sqlite_url, max_workers=16, poll_seconds=0.2) as running:
        store = GrpcResourceStore(running.address)
        channel = grpc.insecure_channel(running.address)
        controllers = []

        def start_controller(mode):
            runtime = make_runtime(mode, data_dir=tmp_path / "data", db_manager_address=running.address,
                                   stop_grace=2, client_factory=lambda: docker.DockerClient(
                                       base_url=f"unix://{tmp_path}/no-engine.sock", timeout=5))
            controller = build_controller(store, runtime, channel, db_manager_address=running.address,
                                          workers=2, resync_seconds=2)
            controller.start()
            controllers.append(controller)
            return store

        yield start_controller
        for controller in controllers:
            controller.stop()
        channel.close()
        store.close()


def _failed(trial):
    return trial is not None and has_condition(trial.status.conditions, "Failed")


def _succeeded(trial):
    return trial is not None and has_condition(trial.status.conditions, "Succeeded")


def test_auto_without_an_engine_runs_the_trial_locally_and_says_the_image_was_not_used(start):
    store = start("auto")
    store.create(_trial("imaged", "import sys; print('acc=0.5'); print('loss=0.1'); sys.exit(4)"))
    failed = _wait(store, "imaged", _failed)
    message = next(c.message for c in failed.status.conditions if c.type == "Failed")
    assert message.startswith("Trial has failed. Job message: exit code 4. Note: the trial's image x was not "
                              "used: no Docker engine answers (")
    assert message.endswith("so it ran as a local process\nLast lines of output:\nacc=0.5\nloss=0.1")
    events, _ = store.list("Event", "default")
    assert [(e.spec["type"], e.spec["reason"]) for e in events if e.spec["involvedObject"]["name"] == "imaged"] \
        == [("Warning", "ImageNotUsed")]


def test_docker_without_an_engine_fails_a_trial_that_names_an_image_and_runs_one_without(start):
    store = start("docker")
    store.create(_trial("imaged", "print('acc=0.5')"))
    failed = _wait(store, "imaged", _failed)
    condition = next(c for c in failed.status.conditions if c.type == "Failed")
    assert condition.reason == "TrialFailed. Job reason: Error"
    assert condition.message.startswith("Trial has failed. Job message: no Docker engine answers (")
    assert "the Docker runtime cannot run the trial's image (start the engine, or the stack with " \
        "--runtime local or auto)" in condition.message
    plain = _trial("plain", "print('acc=0.5'); print('loss=0.1')")
    del plain.spec.run_spec["spec"]["template"]["spec"]["containers"][0]["image"]
    store.create(plain)
    assert _succeeded(_wait(store, "plain", _succeeded))
