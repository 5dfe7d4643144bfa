"""Local jobs under the native wrapper (sextant-jobwrap): exit records, stop, re-adoption, and
the metrics read once the job has ended (StdOut, File, Push), over real processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from sextant.runtime import native
from sextant.runtime.base import JobPhase, JobSpec
from sextant.runtime.collector_settings import CollectorSettings, StopRule
from sextant.runtime.local import LocalRuntime

pytestmark = pytest.mark.skipif(native.jobwrap_path() is None, reason="no C compiler on this machine")

def _job(name, command, collector: CollectorSettings | None = None, env=None):
    pod = {"containers": [{"name": "main", "image": "x", "command": command,
                           "env": [{"name": k, "value": v} for k, v in (env or {}).items()]}]}
    return JobSpec(name=name, namespace="default", run_spec={
        "apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": pod}}},
        collector=collector or CollectorSettings(metrics=("loss", "acc"), report="spool"))


def _wait_done(rt, name, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = rt.job_status("default", name)
        if st.phase in (JobPhase.SUCCEEDED, JobPhase.FAILED):
            return st
        time.sleep(0.05)
    raise AssertionError(f"job {name} did not finish: {st}")


def _spooled(tmp_path, name):
    files = sorted((tmp_path / "jobs/default" / name / "spool").glob("*.json"))
    return [(d["time"], d["name"], d["value"]) for f in files for d in json.loads(f.read_text())]


def _wrapper_of(tmp_path, name):
    return json.loads((tmp_path / "jobs/default" / name / "job.json").read_text())


# --- the wrapper itself -----------------------------------------------------------------------

def _run_wrapper(tmp_path, *command):
    record = tmp_path / "exit.json"
    done = subprocess.run([str(native.jobwrap_path()), str(record), "--", *command],
                          capture_output=True, text=True, timeout=20)
    return done, json.loads(record.read_text())


def test_wrapper_records_exit_codes_signals_and_start_failures(tmp_path):
    done, rec = _run_wrapper(tmp_path, "/bin/echo", "loss=1")
    assert done.stdout == "loss=1\n" and done.returncode == 0
    assert (rec["exit_code"], rec["reason"], rec["message"], rec["collected"]) == (0, "Completed", "", False)
    assert rec["completion_time"].endswith("Z") and len(rec["completion_time"]) == 27
    done, rec = _run_wrapper(tmp_path, sys.executable, "-c", "import sys; sys.exit(3)")
    assert (done.returncode, rec["exit_code"], rec["reason"], rec["message"]) == (3, 3, "Error", "exit code 3")
    done, rec = _run_wrapper(tmp_path, sys.executable, "-c", "import os, signal; os.kill(os.getpid(), 9)")
    assert (rec["exit_code"], rec["message"]) == (-9, "killed by signal SIGKILL")
    # A name full of JSON's special characters still gives a valid record naming it.
    odd = 'no "such"\\ trainer\n\t'
    done, rec = _run_wrapper(tmp_path, odd)
    assert (done.returncode, rec["exit_code"], rec["reason"]) == (127, 127, "Error")
    assert rec["message"] == f"command not found: {odd} (No such file or directory)"
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file + rename


def test_wrapper_usage_error(tmp_path):
    done = subprocess.run([str(native.jobwrap_path()), str(tmp_path / "exit.json")], capture_output=True,
                          text=True)
    assert done.returncode == 2 and "usage" in done.stderr and not (tmp_path / "exit.json").exists()


# --- through the local runtime ----------------------------------------------------------------

def test_stdout_metrics_are_read_after_the_job_ends(tmp_path):
    rt = LocalRuntime(tmp_path, db_manager_address="127.0.0.1:1")
    code = ("import os\nprint('2026-01-02T03:04:05Z loss=0.5')\nprint('loss=0.25 acc=0.9')\n"
            "print('trial', os.environ['KATIB_TRIAL_NAME'], os.environ['SEXTANT_DB_MANAGER'])")
    rt.start_job(_job("n1", ["python", "-c", code]))
    assert _wrapper_of(tmp_path, "n1")["collect_after_exit"]  # the native path was taken
    st = _wait_done(rt, "n1")
    assert st.phase == JobPhase.SUCCEEDED and st.exit_code == 0 and st.reason == "Completed"
    assert _spooled(tmp_path, "n1") == [("2026-01-02T03:04:05Z", "loss", "0.5"),
                                        ("0001-01-01T00:00:00Z", "loss", "0.25"),
                                        ("0001-01-01T00:00:00Z", "acc", "0.9")]
    assert "trial n1 127.0.0.1:1" in open(rt.job_log_path("default", "n1")).read()
    record = json.loads((tmp_path / "jobs/default/n1/exit.json").read_text())
    assert record["collected"] is True
    # Asking again does not collect twice.
    assert rt.job_status("default", "n1").phase == JobPhase.SUCCEEDED
    assert len(_spooled(tmp_path, "n1")) == 3


def test_missing_objective_is_unavailable_and_failures_keep_their_reason(tmp_path):
    rt = LocalRuntime(tmp_path)
    rt.start_job(_job("n2", ["python", "-c", "print('acc=0.1'); raise SystemExit(4)"]))
    st = _wait_done(rt, "n2")
    assert st.phase == JobPhase.FAILED and st.exit_code == 4 and st.message == "exit code 4"
    assert _spooled(tmp_path, "n2") == [("0001-01-01T00:00:00Z", "acc", "0.1"),
                                        ("0001-01-01T00:00:00Z", "loss", "unavailable")]
    rt.start_job(_job("n3", ["/nonexistent/trainer"]))
    st = _wait_done(rt, "n3")
    assert st.phase == JobPhase.FAILED and st.message.startswith("command not found: /nonexistent/trainer")


def test_file_kind_and_push_kind(tmp_path):
    rt = LocalRuntime(tmp_path)
    code = ("import json, sys\nopen(sys.argv[1], 'w').write(json.dumps({'loss': '0.3', 'timestamp': "
            "'2026-01-02T03:04:05Z'}) + '\\nnot json\\n')")
    rt.start_job(_job("f1", ["python", "-c", code, "/var/log/katib/m.json"],
                      CollectorSettings(metrics=("loss",), kind="File", path="/var/log/katib/m.json",
                                    format="JSON", report="spool")))
    assert _wait_done(rt, "f1").phase == JobPhase.SUCCEEDED
    assert _spooled(tmp_path, "f1") == [("2026-01-02T03:04:05Z", "loss", "0.3")]
    # Push: the trial reports on its own; nothing is read, and no "unavailable" is added here
    # (the trial controller reports it if the objective never arrives).
    rt.start_job(_job("p1", ["python", "-c", "print('loss=1')"], CollectorSettings(metrics=("loss",), kind="Push", report="spool")))
    assert _wait_done(rt, "p1").phase == JobPhase.SUCCEEDED
    assert _spooled(tmp_path, "p1") == []


def test_stop_and_readoption(tmp_path):
    rt = LocalRuntime(tmp_path, stop_grace=2)
    code = "import time\nprint('loss=2', flush=True)\ntime.sleep(60)"
    rt.start_job(_job("s1", ["python", "-c", code]))
    rt2 = LocalRuntime(tmp_path, stop_grace=2)  # a restarted controller: not the wrapper's parent
    assert rt2.job_status("default", "s1").phase == JobPhase.RUNNING
    assert not rt2.job_exit_notified("default", "s1")
    deadline = time.monotonic() + 20
    while "loss=2" not in open(rt2.job_log_path("default", "s1")).read() and time.monotonic() < deadline:
        time.sleep(0.05)
    rt2.stop_job("default", "s1")
    st = _wait_done(rt2, "s1")
    assert st.phase == JobPhase.FAILED and st.reason == "Killed"
    assert _spooled(tmp_path, "s1") == [("0001-01-01T00:00:00Z", "loss", "2")]  # no "unavailable"


def test_jobs_that_need_watching_keep_the_python_wrapper(tmp_path, monkeypatch):
    rt = LocalRuntime(tmp_path)
    rt.start_job(_job("e1", ["python", "-c", "print('loss=1')"],
                      CollectorSettings(metrics=("loss",), stop_rules=(StopRule("loss", "0.5", "less", 0),),
                                    report="spool")))
    rt.start_job(_job("e2", ["python", "-c", "print('loss=1')"], CollectorSettings(
        metrics=("loss",), kind="TensorFlowEvent", path="/tmp/tf", report="spool")))
    for name in ("e1", "e2"):
        assert "collect_after_exit" not in _wrapper_of(tmp_path, name)
        _wait_done(rt, name)
    # Without a compiler (or when switched off) every job uses the Python wrapper.
    monkeypatch.setenv("SEXTANT_NATIVE_JOBWRAP", "0")
    rt = LocalRuntime(tmp_path / "off")
    rt.start_job(_job("o1", ["python", "-c", "print('loss=1')"]))
    assert "collect_after_exit" not in _wrapper_of(tmp_path / "off", "o1")
    assert _wait_done(rt, "o1").phase == JobPhase.SUCCEEDED
    assert _spooled(tmp_path / "off", "o1")[0][1:] == ("loss", "1")


def test_a_job_that_ends_between_the_two_looks_is_not_a_lost_exit(tmp_path, monkeypatch):
    """status() reads exit.json, then checks the process: if the wrapper wrote its record and
    exited in between, the job succeeded; it did not "end without recording an exit code"."""
    from sextant.runtime import process

    rt = LocalRuntime(tmp_path)
    rt.start_job(_job("r1", ["python", "-c", "print('loss=1')"]))
    _wait_done(rt, "r1")
    job = tmp_path / "jobs/default/r1"
    record = (job / "exit.json").read_text()
    (job / "exit.json").unlink()

    def wrapper_finishes_now(_proc):
        (job / "exit.json").write_text(record)
        return False

    monkeypatch.setattr(process, "is_alive", wrapper_finishes_now)
    st = rt.job_status("default", "r1")
    assert st.phase == JobPhase.SUCCEEDED and st.exit_code == 0


def test_a_start_cut_short_before_the_pid_was_noted_is_never_started_twice(tmp_path):
    """A controller died between starting a job and noting its pid: the next one adopts the
    running wrapper (found in /proc) instead of starting the trial again; if no wrapper ever
    started, the job is started once."""
    rt = LocalRuntime(tmp_path)
    code = "import time\nprint('loss=1', flush=True)\ntime.sleep(60)"
    rt.start_job(_job("c1", ["python", "-c", code]))
    job = tmp_path / "jobs/default/c1"
    record = json.loads((job / "job.json").read_text())
    pid = record.pop("process")["pid"]
    (job / "job.json").write_text(json.dumps({**record, "starting": True}))
    rt2 = LocalRuntime(tmp_path, stop_grace=2)
    assert rt2.job_status("default", "c1").phase == JobPhase.RUNNING
    assert json.loads((job / "job.json").read_text())["process"]["pid"] == pid  # adopted
    rt2.stop_job("default", "c1")
    assert _wait_done(rt2, "c1").reason == "Killed"
    # A record written just before the controller died, with no wrapper behind it.
    (tmp_path / "jobs/default/c2").mkdir(parents=True)
    (tmp_path / "jobs/default/c2/job.json").write_text(json.dumps({**record, "name": "c2", "starting": True}))
    assert rt2.job_status("default", "c2").phase == JobPhase.NOT_FOUND
    rt2.start_job(_job("c2", ["python", "-c", "print('loss=2')"]))
    assert _wait_done(rt2, "c2").phase == JobPhase.SUCCEEDED
    assert open(rt2.job_log_path("default", "c2")).read().count("loss=2") == 1


@pytest.mark.parametrize("native_wrapper", ["1", "0"])
def test_a_metrics_file_that_can_never_be_read_fails_the_job_with_the_cause(tmp_path, monkeypatch, native_wrapper):
    """Issue 21: a File collector pointed at a directory used to leave the trial Running for
    ever (the read failed and was retried). Now the job fails, naming the path and the cause,
    even though the trial command itself exits 0; the Python wrapper stops the command at once."""
    monkeypatch.setenv("SEXTANT_NATIVE_JOBWRAP", native_wrapper)
    rt = LocalRuntime(tmp_path, stop_grace=2)
    pause = 0.5 if native_wrapper == "1" else 60
    command = ["python", "-c", f"import time; print('loss=1', flush=True); time.sleep({pause})"]
    rt.start_job(_job("d1", command, CollectorSettings(metrics=("loss",), kind="File", path="/", report="spool")))
    started = time.monotonic()
    st = _wait_done(rt, "d1", timeout=30)
    assert st.phase == JobPhase.FAILED and st.reason == "MetricsCollectorFailed", st
    assert "cannot read" in st.message and "directory" in st.message.lower(), st.message
    assert time.monotonic() - started < 20  # not the trial's 60 s
    assert rt.job_status("default", "d1").phase == JobPhase.FAILED  # stays failed: no retry loop
