"""Spool reporting: the collector writes metric logs to the job's spool, the trial controller
ships them to a real DB manager exactly once (also across a controller restart and while the
DB manager is down)."""

from __future__ import annotations

import json
import time

import grpc
import pytest

from services.trial_controller import spool
from services.trial_controller.__main__ import build_controller
from sextant.api import api_pb2, api_pb2_grpc
from sextant.katib.condition_list import has_condition
from sextant.ports import free_port
from tests.integration.conftest import running_db_manager
from tests.integration.test_trial_controller import _cond, _trial, _wait

pytestmark = pytest.mark.xdist_group("trial_controller")


@pytest.fixture()
def dbm(fresh_sqlite_url):
    with running_db_manager(fresh_sqlite_url, max_workers=16, poll_seconds=0.2) as running:
        channel = grpc.insecure_channel(running.address)
        yield running.address, api_pb2_grpc.DBManagerStub(channel)
        channel.close()


def _write_spool(directory, batches):
    directory.mkdir(parents=True, exist_ok=True)
    for i, batch in enumerate(batches, 1):
        (directory / f"{i}.json").write_text(json.dumps(
            [{"time": "0001-01-01T00:00:00Z", "name": n, "value": v} for n, v in batch]))


def _stored(stub, trial):
    reply = stub.GetObservationLog(api_pb2.GetObservationLogRequest(trial_name=trial))
    return [(m.metric.name, m.metric.value) for m in reply.observation_log.metric_logs]


class DiesAfterSend:
    """A stub whose process 'dies' right after the DB manager accepted the n-th report."""

    def __init__(self, stub, die_after: int):
        self.stub, self.left = stub, die_after

    def ReportObservationLog(self, request, timeout=None):  # noqa: N802 - gRPC method name
        self.stub.ReportObservationLog(request, timeout=timeout)
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt("controller killed after the RPC, before clean-up")

    def GetObservationLog(self, request, timeout=None):  # noqa: N802
        return self.stub.GetObservationLog(request, timeout=timeout)


def test_ship_sends_everything_once_in_order(dbm, tmp_path):
    _, stub = dbm
    logs = [[("acc", "0.1"), ("loss", "3")], [("acc", "0.2")], [("acc", "0.2"), ("loss", "1")]]
    _write_spool(tmp_path / "s", logs)
    shipped = spool.ship(tmp_path / "s", "t1", stub)
    assert shipped.sent == 5 and len(shipped.logs) == 5  # all of it, from the start
    assert spool.ship(tmp_path / "s", "t1", stub) == (0, None)
    assert _stored(stub, "t1") == [x for b in logs for x in b]
    assert list((tmp_path / "s").iterdir()) == []


@pytest.mark.parametrize("chunk,die_after", [(5000, 1), (2, 1), (2, 2), (2, 3)])
def test_ship_exactly_once_when_the_shipper_dies_after_a_send(dbm, tmp_path, monkeypatch, chunk, die_after):
    _, stub = dbm
    monkeypatch.setattr(spool, "CHUNK", chunk)
    # Duplicate (name, value) pairs on purpose: the recovery must count, not just test membership.
    logs = [[("acc", "0.5"), ("acc", "0.5")], [("acc", "0.5"), ("loss", "2")], [("loss", "2")]]
    _write_spool(tmp_path / "s", logs)
    with pytest.raises(KeyboardInterrupt):
        spool.ship(tmp_path / "s", "t2", DiesAfterSend(stub, die_after))
    assert (tmp_path / "s" / spool.MARKER).exists()
    # The restarted controller: part went before, so it cannot vouch for the whole log.
    assert spool.ship(tmp_path / "s", "t2", stub).logs is None
    assert sorted(_stored(stub, "t2")) == sorted(x for b in logs for x in b)
    assert list((tmp_path / "s").iterdir()) == []


def test_ship_keeps_the_spool_while_the_db_manager_is_down(dbm, tmp_path):
    _, stub = dbm
    _write_spool(tmp_path / "s", [[("acc", "0.7")]])
    down = grpc.insecure_channel(f"127.0.0.1:{free_port()}")
    with pytest.raises(grpc.RpcError):
        spool.ship(tmp_path / "s", "t3", api_pb2_grpc.DBManagerStub(down), timeout=2)
    down.close()
    assert (tmp_path / "s" / "1.json").exists()
    assert spool.ship(tmp_path / "s", "t3", stub).sent == 1
    assert _stored(stub, "t3") == [("acc", "0.7")]


@pytest.mark.parametrize("native", [True, False], ids=["native-wrapper", "python-wrapper"])
def test_controller_restart_between_job_end_and_shipping(dbm, tmp_path, native):
    """The job ends while no controller runs; the next one ships its spool and succeeds.

    Python wrapper: the spool is written by the wrapper while the trial runs. Native wrapper:
    only the exit code is recorded, and the next controller reads the log into the spool."""
    from sextant.runtime.local import LocalRuntime
    from sextant.store.client import GrpcResourceStore

    address, stub = dbm
    store = GrpcResourceStore(address)
    channel = grpc.insecure_channel(address)
    controllers = []

    def start():
        rt = LocalRuntime(tmp_path / "data", db_manager_address=address, stop_grace=2, native_wrapper=native)
        c = build_controller(store, rt, channel, db_manager_address=address, workers=2, resync_seconds=2)
        c.start()
        controllers.append(c)
        return c, rt

    try:
        first, rt = start()
        code = ("import time\nprint('acc=0.4 loss=2', flush=True)\ntime.sleep(1.5)\n"
                "print('acc=0.6 loss=1', flush=True)")
        store.create(_trial("spooled", code, retain=True))
        _wait(store, "spooled", _cond("Running"))
        first.stop()
        job = tmp_path / "data/jobs/default/spooled"
        deadline = time.monotonic() + 30
        while not (job / "exit.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        ended = json.loads((job / "exit.json").read_text())
        assert ended["reason"] == "Completed"
        assert _stored(stub, "spooled") == []  # nothing was sent by the wrapper
        if native:
            assert ended["collected"] is False and not (job / "spool").exists()
        else:
            assert ended["metrics_spooled"] is True and list((job / "spool").glob("*.json"))
        start()
        done = _wait(store, "spooled", _cond("Succeeded"))
        acc = [m for m in done.status.observation.metrics if m.name == "acc"][0]
        assert (acc.min, acc.max, acc.latest) == ("0.4", "0.6", "0.6")
        assert sorted(_stored(stub, "spooled")) == sorted(
            [("acc", "0.4"), ("loss", "2"), ("acc", "0.6"), ("loss", "1")])
        assert not list((job / "spool").glob("*.json"))
        assert not has_condition(done.status.conditions, "Failed")
    finally:
        for c in controllers:
            c.stop()
        channel.close()
        store.close()


def test_early_stopping_rules_keep_direct_reporting():
    from services.trial_controller.collector_for_trial import collector_settings

    trial = _trial("t", "print(1)")
    assert collector_settings(trial, report="spool").report == "spool"
    assert collector_settings(trial, report="spool").to_argv()[-2:] == ["--report", "spool"]
    from sextant.resources.models import EarlyStoppingRule

    trial.spec.early_stopping_rules = [EarlyStoppingRule.model_validate(
        {"name": "acc", "value": "0.9", "comparison": "less", "startStep": 0})]
    assert collector_settings(trial, report="spool").report == "direct"
    assert "--report" not in collector_settings(trial, report="spool").to_argv()


def test_wrapper_in_spool_mode_writes_the_spool_without_loading_grpc(tmp_path):
    import subprocess
    import sys

    from sextant.runtime.local import child_environment

    job = tmp_path / "job"
    job.mkdir()
    argv = [sys.executable, "-S", "-X", "importtime", "-m", "services.metrics_collector", "--job-dir",
            str(job), "--trial", "w", "--metrics", "acc;loss", "--report", "spool",
            "--db-manager", f"127.0.0.1:{free_port()}", "--",
            sys.executable, "-c", "print('loss=0.5'); print('loss=0.25')"]
    done = subprocess.run(argv, capture_output=True, text=True, env=child_environment(), timeout=60)
    assert done.returncode == 0, done.stderr
    assert "loss=0.25" in done.stdout
    assert "grpc" not in done.stderr and "google.protobuf" not in done.stderr
    logs = [d for p in sorted((job / "spool").glob("*.json")) for d in json.loads(p.read_text())]
    # the objective never came: its "unavailable" log is spooled too, after the others
    assert [(d["name"], d["value"]) for d in logs] == [("loss", "0.5"), ("loss", "0.25"), ("acc", "unavailable")]
    ended = json.loads((job / "exit.json").read_text())
    assert (ended["reason"], ended["metrics_spooled"], ended["metrics_reported"]) == ("Completed", True, True)


def test_shipped_logs_give_the_observation_the_database_gives(dbm, tmp_path):
    """The controller builds the observation from a whole fresh shipment instead of reading it
    back: it must order the logs exactly as the DB manager returns them."""
    from services.trial_controller.observation_builder import build_metric, logs_in_store_order

    _, stub = dbm
    times = ["2026-01-01T00:00:02Z", "2026-01-01T00:00:01.5Z", "0001-01-01T00:00:00Z",
             "2026-01-01T01:00:01.5+01:00",  # the same instant as the second, later in the log
             "2026-01-01T00:00:01.0000009Z", "2026-01-01T00:00:01.0000001Z",  # equal once truncated to µs
             "", "2026-01-01T00:00:02Z"]
    values = ["0.5", "0.7", "0.1", "0.9", "0.40", "0.4", "0.99", "unavailable"]
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "1.json").write_text(json.dumps(
        [{"time": t, "name": "acc", "value": v} for t, v in zip(times, values, strict=True)]))
    shipped = spool.ship(tmp_path / "s", "ordered", stub)
    reply = stub.GetObservationLog(api_pb2.GetObservationLogRequest(trial_name="ordered"))
    stored = [(m.time_stamp, m.metric.value) for m in reply.observation_log.metric_logs]
    local = logs_in_store_order(shipped.logs)["acc"]
    assert [v for _, v in local] == [v for _, v in stored]
    assert build_metric("acc", local) == build_metric("acc", stored)
