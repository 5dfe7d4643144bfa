"""The metrics collector as a process around real trial commands, reporting to the real DB manager
(and, for early stopping, to the real medianstop service). Assertions read back what the DB
manager stores (GetObservationLog, ordered by time, timestamps in UTC)."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sextant.runtime.local import child_environment
from tests.integration.katib_peers import DBManagerProcess, medianstop_process, metric_values, observation_log

ROOT = Path(__file__).resolve().parents[2]
TRAINERS = ROOT / "examples" / "trainers"


@pytest.fixture()
def db(sqlite_db_manager):
    return sqlite_db_manager.address


def collector(tmp_path, db, args, command, *, trial="t1", wait=True, timeout=90, env=None):
    argv = [sys.executable, "-m", "services.metrics_collector", "--job-dir", str(tmp_path),
            "--trial", trial, "--db-manager", db, "--flush-interval", "0.2",
            "--poll-interval", "0.2", *args, "--", *command]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=child_environment({"SEXTANT_DB_MANAGER": db, **(env or {})}), cwd=tmp_path)
    if not wait:
        return proc
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode(), json.loads((tmp_path / "exit.json").read_text())


def test_stdout_passthrough_exit_code_and_unavailable(tmp_path, db):
    code, out, ended = collector(tmp_path, db, ["--metrics", "acc;loss"],
                                 [sys.executable, "-c", "import sys; print('hello loss=1'); sys.exit(4)"])
    assert code == 4 and "hello loss=1" in out
    assert ended["exit_code"] == 4 and ended["reason"] == "Error" and ended["message"] == "exit code 4"
    assert metric_values(db, "t1", "loss") == ["1"]
    # the objective metric was never printed: Katib's "unavailable" at the zero time
    assert observation_log(db, "t1", "acc") == [("0001-01-01T00:00:00Z", "acc", "unavailable")]


def test_file_text_and_json(tmp_path, db):
    text = tmp_path / "m.txt"
    write = ("import time\n"
             f"f = open({str(text)!r}, 'w')\n"
             "f.write('2024-05-01T10:00:00Z acc=0.5\\n'); f.flush(); time.sleep(0.5)\n"
             "f.write('2024-05-01T10:00:01.5+02:00 acc=0.6 loss=2\\nacc=0.7')\n")
    collector(tmp_path, db, ["--metrics", "acc;loss", "--kind", "File", "--path", str(text)],
              [sys.executable, "-c", write])
    # The line's own time (+02:00 is 08:00 UTC); a line without one gets the zero time.
    assert observation_log(db, "t1") == [("0001-01-01T00:00:00Z", "acc", "0.7"),
                                         ("2024-05-01T08:00:01.5Z", "acc", "0.6"),
                                         ("2024-05-01T08:00:01.5Z", "loss", "2"),
                                         ("2024-05-01T10:00:00Z", "acc", "0.5")]
    out = tmp_path / "m.json"
    collector(tmp_path, db, ["--metrics", "accuracy;loss", "--kind", "File", "--format", "JSON",
                             "--path", str(out)],
              [sys.executable, str(TRAINERS / "json_metrics.py"), "--epochs", "3", "--out", str(out)],
              trial="t2")
    assert len(metric_values(db, "t2", "accuracy")) == 3 and len(metric_values(db, "t2", "loss")) == 3
    assert all(t.endswith("Z") and t.startswith("20") for t, _, _ in observation_log(db, "t2"))


def test_tfevent(tmp_path, db):
    logdir = tmp_path / "run"
    collector(tmp_path, db, ["--metrics", "test/accuracy;loss", "--kind", "TensorFlowEvent",
                             "--path", str(logdir)],
              [sys.executable, str(TRAINERS / "tfevents.py"), "--epochs", "4", "--logdir", str(logdir)])
    acc = [float(v) for v in metric_values(db, "t1", "test/accuracy")]
    loss = [float(v) for v in metric_values(db, "t1", "loss")]
    assert len(acc) == 4 and len(loss) == 4
    assert acc == sorted(acc) and loss == sorted(loss, reverse=True)
    assert acc[0] < 1 - loss[0] / 2  # test/ values, not train/accuracy


def test_prometheus_scrape(tmp_path, db):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"# TYPE acc gauge\nacc 0.75\n# TYPE other gauge\nother 1\n"
            self.send_response(200 if self.path == "/metrics" else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        collector(tmp_path, db, ["--metrics", "acc", "--kind", "PrometheusMetric", "--url",
                                 f"http://127.0.0.1:{httpd.server_address[1]}/metrics"],
                  [sys.executable, "-c", "import time; time.sleep(1.5)"])
    finally:
        httpd.shutdown()
    values = metric_values(db, "t1", "acc")
    assert values and set(values) == {"0.75"}
    assert metric_values(db, "t1", "other") == []


def test_push_and_custom(tmp_path, db):
    push = "import sextant; sextant.report_metrics({'acc': 0.5})"
    code, _, ended = collector(tmp_path, db, ["--metrics", "acc", "--kind", "Push"],
                               [sys.executable, "-c", push])
    assert code == 0 and ended["reason"] == "Completed"
    assert metric_values(db, "t1", "acc") == ["0.5"]  # no `unavailable` added for Push
    custom = json.dumps(["python", "-c", "import sextant; sextant.report_metrics({'acc': '0.25'})"])
    collector(tmp_path, db, ["--metrics", "acc", "--kind", "Custom", "--custom-command", custom],
              [sys.executable, "-c", "print('acc=0.9')"], trial="t2")
    assert metric_values(db, "t2", "acc") == ["0.25"]


def test_spool_survives_db_outage(tmp_path, fresh_sqlite_url):
    """The real DB manager is killed mid-trial and started again on the same port."""
    dbm = DBManagerProcess(fresh_sqlite_url, tmp_path / "db-manager.log").start()
    try:
        flag1, flag2 = tmp_path / "go1", tmp_path / "go2"
        script = ("import os, time\n"
                  "def wait(p):\n"
                  "    while not os.path.exists(p): time.sleep(0.05)\n"
                  "print('acc=0.1', flush=True)\n"
                  f"wait({str(flag1)!r})\n"
                  "print('acc=0.2', flush=True); print('acc=0.3', flush=True)\n"
                  f"wait({str(flag2)!r})\n"
                  "print('acc=0.4', flush=True)\n")
        proc = collector(tmp_path, dbm.address, ["--metrics", "acc"], [sys.executable, "-c", script],
                         wait=False)
        deadline = time.monotonic() + 30
        while not metric_values(dbm.address, "t1", "acc") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert metric_values(dbm.address, "t1", "acc") == ["0.1"]
        dbm.kill()  # the DB manager goes away mid-trial
        flag1.touch()
        while not list((tmp_path / "spool").glob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list((tmp_path / "spool").glob("*.json")), "nothing was spooled while the DB was down"
        dbm.start()  # same port, same database
        flag2.touch()
        proc.communicate(timeout=60)
        assert metric_values(dbm.address, "t1", "acc") == ["0.1", "0.2", "0.3", "0.4"]
        assert not list((tmp_path / "spool").glob("*.json"))
        assert json.loads((tmp_path / "exit.json").read_text())["metrics_reported"] is True
    finally:
        dbm.kill()


def _trial(name: str):
    from sextant.resources.models import Trial

    return Trial.model_validate({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"objective": {"type": "maximize", "objectiveMetricName": "acc"},
                 "parameterAssignments": [{"name": "x", "value": "0.5"}],
                 "runSpec": {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
                             "spec": {"template": {"spec": {"containers": [
                                 {"name": "main", "image": "x", "command": ["true"]}]}}}}},
    })


def test_early_stopping(tmp_path, sqlite_db_manager):
    db = sqlite_db_manager.address
    store = sqlite_db_manager.store()
    store.create(_trial("t1"))
    script = ("import time\n"
              "for v in (1, 3, 1, 5):\n"
              "    print(f'loss={v} acc=0.5', flush=True); time.sleep(0.3)\n"
              "time.sleep(60)\n")
    try:
        with medianstop_process(db) as early_stopping:
            code, out, ended = collector(
                tmp_path, db, ["--metrics", "acc;loss", "--objective-type", "maximize",
                               "--stop-rule", "loss;2;greater;1", "--early-stopping", early_stopping],
                [sys.executable, "-c", script])
        assert code == 0 and ended["reason"] == "EarlyStopped" and ended["early_stopped"] is True
        # medianstop's SetTrialStatus marked the Trial in the store
        conditions = store.get("Trial", "default", "t1").status.conditions
        assert [(c.type, c.status) for c in conditions if c.type == "EarlyStopped"] == [("EarlyStopped", "True")]
    finally:
        store.close()
    # startStep 1 skips the first loss report (1); the second (3 > 2) meets the rule and stops the trial
    assert metric_values(db, "t1", "loss")[:2] == ["1", "3"]
    assert "5" not in metric_values(db, "t1", "loss")


def test_in_a_pod_an_unreadable_metrics_source_leaves_its_cause_as_the_termination_message(tmp_path, db):
    """The Kubernetes runtime sets SEXTANT_TERMINATION_LOG: the collector writes the cause there
    (Kubernetes keeps it in the pod's status) and exits with the code the Job's pod failure
    policy fails the Job on, though the trial command would have exited 0."""
    log = tmp_path / "termination-log"
    code, _, ended = collector(tmp_path, db, ["--metrics", "loss", "--kind", "File", "--path", "/"],
                               [sys.executable, "-c", "import time; print('loss=1', flush=True); time.sleep(60)"],
                               env={"SEXTANT_TERMINATION_LOG": str(log)}, timeout=40)
    assert code == 86 and ended["reason"] == "MetricsCollectorFailed"
    message = log.read_text()
    assert message.startswith("MetricsCollectorFailed: the metrics collector cannot read /"), message
    assert "directory" in message.lower()
