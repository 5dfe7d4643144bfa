"""Katib's per-pod metrics volume, emulated locally: trials of one experiment that name the same
File / TensorFlowEvent path (e.g. /var/log/katib/metrics.log) each write and read their own copy."""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from pathlib import Path

import pytest

from sextant.runtime.base import JobPhase, JobSpec, SuggestionVolume
from sextant.runtime.collector_settings import CollectorSettings
from sextant.runtime.local import LocalRuntime
from sextant.runtime.metrics_volume import PathRewriter, mount_path
from tests.integration.katib_peers import metric_values

TRAINERS = Path(__file__).resolve().parents[2] / "examples" / "trainers"
# Writes "acc=<value>" lines to the file named by --out= and by $METRICS_FILE.
WRITER = ("import os, sys\n"
          "out = sys.argv[1].split('=', 1)[1]\n"
          "assert out == os.environ['METRICS_FILE'], (out, os.environ['METRICS_FILE'])\n"
          "with open(out, 'a') as f:\n"
          "    for v in sys.argv[2:]:\n"
          "        f.write(f'acc={v}\\n')\n")


@pytest.fixture()
def db(sqlite_db_manager):
    """The real DB manager the jobs' metrics collectors report to."""
    return sqlite_db_manager


def _job(name: str, command: list[str], collector: CollectorSettings, env: dict[str, str] | None = None) -> JobSpec:
    pod = {"containers": [{"name": "main", "image": "example/trainer:1", "command": command,
                           "env": [{"name": k, "value": v} for k, v in (env or {}).items()]}]}
    run_spec = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
                "spec": {"template": {"spec": pod}}}
    return JobSpec(name=name, namespace="default", run_spec=run_spec, primary_container_name="main",
                   collector=replace(collector, flush_interval=0.2, poll_interval=0.2))


def _wait_done(rt: LocalRuntime, name: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = rt.job_status("default", name)
        if st.phase in (JobPhase.SUCCEEDED, JobPhase.FAILED):
            return st
        time.sleep(0.1)
    raise AssertionError(f"job {name} did not finish")


def test_mount_path_follows_katib_rules():
    assert mount_path(CollectorSettings(metrics=("m",), kind="File", path="/var/log/katib/metrics.log")) == "/var/log/katib"
    assert mount_path(CollectorSettings(metrics=("m",), kind="TensorFlowEvent", path="/var/log/katib/tfevent/")) == \
        "/var/log/katib/tfevent"
    assert mount_path(CollectorSettings(metrics=("m",), kind="Custom", path="/out/dir/")) == "/out/dir"
    assert mount_path(CollectorSettings(metrics=("m",), kind="Custom", path="/out/m.log")) == "/out"
    assert mount_path(CollectorSettings(metrics=("m",), kind="StdOut")) is None
    assert mount_path(CollectorSettings(metrics=("m",), kind="File", path="relative/m.log")) is None
    assert mount_path(CollectorSettings(metrics=("m",), kind="File", path="/m.log")) is None  # never remap "/"


def test_rewriter_replaces_whole_path_prefixes_only(tmp_path):
    rw = PathRewriter("/katib", tmp_path)
    assert rw("/katib/m.log") == f"{tmp_path}/m.log"
    assert rw("--log-path=/katib/m.log") == f"--log-path={tmp_path}/m.log"
    assert rw("/katib") == str(tmp_path)
    assert rw("a:/katib/x,/katib/y") == f"a:{tmp_path}/x,{tmp_path}/y"
    for untouched in ("/katibx/m.log", "/opt/katib/m.log", "katib/m.log", "--lr=0.1"):
        assert rw(untouched) == untouched


def test_file_collector_trials_each_see_only_their_own_metrics(tmp_path, db):
    rt = LocalRuntime(tmp_path, db_manager_address=db.address)
    path = "/var/log/katib/metrics.log"
    collector = CollectorSettings(metrics=("acc",), kind="File", path=path)
    values = {"exp-t1": ["0.11", "0.12"], "exp-t2": ["0.21", "0.22", "0.23"]}
    for name, vals in values.items():  # both running at the same time, same container path
        rt.start_job(_job(name, ["python", "-c", WRITER, f"--out={path}", *vals], collector,
                          env={"METRICS_FILE": path}))
    for name, vals in values.items():
        st = _wait_done(rt, name)
        assert st.phase == JobPhase.SUCCEEDED, open(rt.job_log_path("default", name)).read()
        assert metric_values(db.address, name, "acc") == vals
        own = tmp_path / "jobs" / "default" / name / "volumes" / "metrics" / "metrics.log"
        assert own.read_text().split() == [f"acc={v}" for v in vals]
        record = json.loads((tmp_path / "jobs" / "default" / name / "job.json").read_text())
        assert record["command"][-len(vals) - 1] == f"--out={own}"


def test_tfevent_collector_trials_each_see_only_their_own_metrics(tmp_path, db):
    rt = LocalRuntime(tmp_path, db_manager_address=db.address)
    logdir = "/var/log/katib/tfevent/"
    collector = CollectorSettings(metrics=("test/accuracy",), kind="TensorFlowEvent", path=logdir)
    lrs = {"exp-t1": 0.1, "exp-t2": 0.3}
    for name, lr in lrs.items():
        rt.start_job(_job(name, ["python", str(TRAINERS / "tfevents.py"), "--epochs=2", f"--lr={lr}",
                                 f"--logdir={logdir}"], collector))
    for name, lr in lrs.items():
        st = _wait_done(rt, name)
        assert st.phase == JobPhase.SUCCEEDED, open(rt.job_log_path("default", name)).read()
        got = [float(v) for v in metric_values(db.address, name, "test/accuracy")]
        want = [1 - math.exp(-lr * epoch * 3) / 1.5 for epoch in (1, 2)]
        assert got == pytest.approx(want, rel=1e-5)


# Appends "acc=<n>" to the metrics file, where n counts the lines of <checkpoint dir>/ckpt, and
# one line to that checkpoint.
CHECKPOINTER = ("import os, sys\n"
                "ckpt = os.path.join(sys.argv[1].split('=', 1)[1], 'ckpt')\n"
                "n = len(open(ckpt).readlines()) if os.path.exists(ckpt) else 0\n"
                "open(ckpt, 'a').write('step\\n')\n"
                "open(sys.argv[2], 'a').write(f'acc={n}\\n')\n")


def test_suggestion_volume_is_the_trials_directory_of_the_service_state(tmp_path, db):
    rt = LocalRuntime(tmp_path, db_manager_address=db.address)
    mount, path = "/var/log/katib/checkpoints/", "/var/log/katib/metrics.log"
    collector = CollectorSettings(metrics=("acc",), kind="File", path=path)
    state = tmp_path / "services" / "default" / "exp-pbt" / "data" / "exp"
    (state / "exp-t2").mkdir(parents=True)
    (state / "exp-t2" / "ckpt").write_text("step\nstep\n")  # as pbt copied it from a parent
    for name in ("exp-t1", "exp-t2"):
        spec = replace(_job(name, ["python", "-c", CHECKPOINTER, f"--checkpoint={mount}", path], collector),
                       suggestion_volume=SuggestionVolume("exp-pbt", f"exp/{name}", mount))
        rt.start_job(spec)
    for name, seen in (("exp-t1", "0"), ("exp-t2", "2")):
        st = _wait_done(rt, name)
        assert st.phase == JobPhase.SUCCEEDED, open(rt.job_log_path("default", name)).read()
        assert metric_values(db.address, name, "acc") == [seen]  # the metrics volume still works too
        assert (state / name / "ckpt").read_text().count("step") == int(seen) + 1
    with pytest.raises(ValueError):
        rt.start_job(replace(_job("exp-t3", ["true"], collector),
                             suggestion_volume=SuggestionVolume("exp-pbt", "../../x", mount)))


def test_suggestion_volume_of_a_shared_service_is_in_its_namespace(tmp_path):
    rt = LocalRuntime(tmp_path)
    spec = replace(_job("exp-t1", ["true"], CollectorSettings(metrics=("acc",), kind="StdOut")),
                   suggestion_volume=SuggestionVolume("pbt", "exp/exp-t1", "/ckpt", namespace="sextant-system"))
    assert rt.suggestion_dir(spec) == tmp_path / "services" / "sextant-system" / "pbt" / "data" / "exp" / "exp-t1"
    own = replace(spec, suggestion_volume=SuggestionVolume("exp-pbt", "exp/exp-t1", "/ckpt"))
    assert rt.suggestion_dir(own) == tmp_path / "services" / "default" / "exp-pbt" / "data" / "exp" / "exp-t1"
