"""LocalRuntime jobs over real processes: success, failure, missing command, kill, re-adoption."""

from __future__ import annotations

import sys
import time

import pytest

from sextant.runtime.base import JobPhase, JobSpec
from sextant.runtime.collector_settings import CollectorSettings
from sextant.runtime.local import LocalRuntime
from tests.integration.katib_peers import metric_values


@pytest.fixture()
def db(sqlite_db_manager):
    """The real DB manager the jobs' metrics collectors report to."""
    return sqlite_db_manager


def _job(name, command, *, kind="Job", container="main", env=None, collector=None, **kw):
    pod = {"containers": [{"name": "sidecar", "image": "busybox", "command": ["false"]},
                          {"name": container, "image": "example/trainer:1", "command": command,
                           "env": [{"name": k, "value": v} for k, v in (env or {}).items()]}]}
    if kind == "Job":
        run_spec = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
                    "spec": {"template": {"spec": pod}}}
    else:
        run_spec = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": name},
                    "spec": {"pytorchReplicaSpecs": {"Worker": {"template": {"spec": {"containers": [
                        {"name": "w", "command": ["false"]}]}}},
                        "Master": {"template": {"spec": pod}}}}}
    return JobSpec(name=name, namespace="default", run_spec=run_spec, primary_container_name=container,
                   collector=collector or CollectorSettings(metrics=("loss",), flush_interval=0.2), **kw)


def _wait_done(rt, name, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = rt.job_status("default", name)
        if st.phase in (JobPhase.SUCCEEDED, JobPhase.FAILED):
            return st
        time.sleep(0.1)
    raise AssertionError(f"job {name} did not finish: {st}")


def test_success_env_and_metrics(tmp_path, db):
    rt = LocalRuntime(tmp_path, db_manager_address=db.address)
    code = "import os; print('loss=0.5'); print('trial', os.environ['KATIB_TRIAL_NAME'], os.environ['FOO'])"
    st = rt.start_job(_job("t1", ["python", "-c", code], env={"FOO": "bar"}))
    assert st.phase in (JobPhase.RUNNING, JobPhase.SUCCEEDED)
    st = _wait_done(rt, "t1")
    assert st.phase == JobPhase.SUCCEEDED and st.exit_code == 0
    log = open(rt.job_log_path("default", "t1")).read()
    assert "trial t1 bar" in log
    assert metric_values(db.address, "t1", "loss") == ["0.5"]
    # idempotent start: a second start does not run the command again
    rt.start_job(_job("t1", ["python", "-c", code], env={"FOO": "bar"}))
    assert metric_values(db.address, "t1", "loss") == ["0.5"]
    rt.delete_job("default", "t1")
    assert rt.job_status("default", "t1").phase == JobPhase.NOT_FOUND


def test_failure_exit_code(tmp_path, db):
    rt = LocalRuntime(tmp_path, db_manager_address=db.address)
    rt.start_job(_job("t2", [sys.executable, "-c", "import sys; print('loss=1'); sys.exit(3)"],
                      kind="PyTorchJob"))
    st = _wait_done(rt, "t2")
    assert st.phase == JobPhase.FAILED and st.exit_code == 3
    assert st.reason == "Error" and st.message == "exit code 3"


def test_a_job_runs_in_the_directory_it_was_submitted_from(tmp_path, db):
    rt = LocalRuntime(tmp_path / "rt", db_manager_address=db.address)
    submitted = tmp_path / "project"
    submitted.mkdir()
    (submitted / "data.txt").write_text("loss=0.25\n")
    rt.start_job(_job("wd", ["python", "-c", "print(open('data.txt').read())"], working_dir=str(submitted)))
    assert _wait_done(rt, "wd").phase == JobPhase.SUCCEEDED
    assert metric_values(db.address, "wd", "loss") == ["0.25"]
    rt.start_job(_job("gone", ["python", "-c", "pass"], working_dir=str(tmp_path / "elsewhere")))
    st = _wait_done(rt, "gone")
    assert st.phase == JobPhase.FAILED and "submitted from" in st.message and "elsewhere" in st.message


def test_missing_command_and_bad_spec(tmp_path, db):
    rt = LocalRuntime(tmp_path, db_manager_address=db.address)
    st = _wait_done(rt, rt.start_job(_job("t3", ["/nonexistent/trainer"])) and "t3")
    assert st.phase == JobPhase.FAILED and "command not found" in st.message
    spec = _job("t4", ["x"])
    spec.primary_container_name = "nope"
    st = rt.start_job(spec)
    assert st.phase == JobPhase.FAILED and "primaryContainerName" in st.message
    with pytest.raises(ValueError, match="name"):
        rt.start_job(_job("../etc", ["x"]))


def test_kill_and_readopt(tmp_path, db):
    rt = LocalRuntime(tmp_path, db_manager_address=db.address, stop_grace=2)
    rt.start_job(_job("t5", [sys.executable, "-c", "import time\nprint('loss=2', flush=True)\ntime.sleep(60)"]))
    # a "restarted controller": a fresh runtime on the same data dir sees the running job
    rt2 = LocalRuntime(tmp_path, db_manager_address=db.address, stop_grace=2)
    deadline = time.monotonic() + 20
    while not metric_values(db.address, "t5", "loss") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rt2.job_status("default", "t5").phase == JobPhase.RUNNING
    rt2.stop_job("default", "t5")
    st = rt2.job_status("default", "t5")
    assert st.phase == JobPhase.FAILED and st.reason == "Killed"
    assert metric_values(db.address, "t5", "loss") == ["2"]
