"""DB manager benchmark: ReportObservationLog rows/s and GetObservationLog latency, over gRPC;
with ``--rpc-cpu``, the DB manager's CPU per call by method.

    .venv/bin/python -m bench.db_manager_bench --backend sqlite
    .venv/bin/python -m bench.db_manager_bench --backend mariadb --rows 1000000
    .venv/bin/python -m bench.db_manager_bench --backend sqlite --rpc-cpu --calls 400
    .venv/bin/python -m bench.db_manager_bench --backend mariadb --read-rss 100000

``--read-rss N`` fills one trial with N logs, starts the DB manager as its own process and reads
them back with one GetObservationLog: it reports the server's resident memory before and its
peak (VmHWM) during the read, the reply's size and the call's latency.

``--rpc-cpu`` starts the DB manager as its own process (``python -m services.db_manager``), keeps
nine Watch streams open (three per kind on Experiment, Suggestion and Trial, as the three
controllers' informers do; ``--watches-per-kind``) and drives each call of the e2e mix ``--calls`` times: Create,
Get and UpdateStatus of a Trial, Get/UpdateStatus/Update of a Suggestion holding 250
assignments, Get/UpdateStatus of an Experiment whose status lists 250 trials, and
ReportObservationLog + GetObservationLog of three logs. It reads the server's CPU time from
/proc before and after each phase (after every watcher has received the phase's last change),
so the figure includes streaming each change to its watchers; the client's CPU is not counted.
Every phase runs ``--rounds`` times and the median is reported (the machine is shared).
``Health.Check`` gives the floor: the cost of any small call through the server.
``--compare-root DIR`` runs a second DB manager from another source tree (say, a checkout of an
older commit) on its own database and alternates every phase between the two, so a before/after
comparison sees the same machine load:

    git worktree add /tmp/before <commit>   # or any copy of the tree
    .venv/bin/python -m bench.db_manager_bench --rpc-cpu --compare-root /tmp/before

Each run uses a fresh database (SQLite in a temp dir; ``sextant_bench_<hex>`` on the server,
dropped afterwards) and an in-process DB manager on a loopback port, called through a real
gRPC channel. The 1M-row table for the read test is filled directly with executemany (that
is set-up, not measured).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import sqlalchemy as sa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.db_manager.app import DBManagerApp
from services.db_manager.database import Database, migrate
from services.db_manager.schema import observation_logs
from sextant.api import api_pb2, api_pb2_grpc, store_pb2, store_pb2_grpc
from sextant.config import ServerSettings, mysql_driver
from sextant.store.codec import doc_from_proto, proto_from_doc

ROOT = Path(__file__).resolve().parents[1]

ADMIN = {"mariadb": f"{mysql_driver()}://root@127.0.0.1:3306/?charset=utf8mb4",
         "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"}


def fresh_database(backend: str):
    if backend == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp()}/bench.db", lambda: None
    name = f"sextant_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(ADMIN[backend], isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        extra = " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" if backend == "mariadb" else ""
        conn.execute(sa.text(f"CREATE DATABASE {name}{extra}"))

    def drop():
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE {name}" + (" WITH (FORCE)" if backend == "postgresql" else "")))

    return sa.engine.make_url(ADMIN[backend]).set(database=name).render_as_string(False), drop


def stamp(i: int) -> str:
    return (datetime(2024, 1, 1) + timedelta(milliseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def bench_report(stub, batch: int, rows: int) -> float:
    calls = max(1, rows // batch)
    requests = [api_pb2.ReportObservationLogRequest(
        trial_name=f"write-{batch}-{c}", observation_log=api_pb2.ObservationLog(metric_logs=[
            api_pb2.MetricLog(time_stamp=stamp(c * batch + i), metric=api_pb2.Metric(name="loss", value=str(i)))
            for i in range(batch)])) for c in range(calls)]
    start = time.perf_counter()
    for r in requests:
        stub.ReportObservationLog(r)
    return calls * batch / (time.perf_counter() - start)


def fill(db: Database, trials: int, per_trial: int) -> None:
    base = datetime(2024, 1, 1)
    chunk: list[dict] = []
    with db.write() as conn:
        for t in range(trials):
            for i in range(per_trial):
                chunk.append({"trial_name": f"trial-{t}", "time": base + timedelta(seconds=i),
                              "metric_name": "loss" if i % 2 else "accuracy", "value": str(i)})
            if len(chunk) >= 20_000:
                conn.execute(observation_logs.insert(), chunk)
                chunk = []
        if chunk:
            conn.execute(observation_logs.insert(), chunk)
    if db.backend == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE observation_logs"))


def bench_get(stub, trials: int, queries: int, metric: str) -> list[float]:
    latencies = []
    for q in range(queries):
        request = api_pb2.GetObservationLogRequest(trial_name=f"trial-{(q * 7919) % trials}", metric_name=metric)
        start = time.perf_counter()
        reply = stub.GetObservationLog(request)
        latencies.append((time.perf_counter() - start) * 1000)
        assert reply.observation_log.metric_logs
    return latencies


# -- --read-rss ---------------------------------------------------------------------------------

def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident set) of a live process, in KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {k: int(fields[k].split()[0]) for k in ("VmRSS", "VmHWM")}


def read_rss(backend: str, rows: int, root: Path = ROOT) -> dict:
    """Peak memory of a DB manager process while it serves one GetObservationLog of ``rows``."""
    url, drop = fresh_database(backend)
    db = Database(url)
    server = None
    tmp = tempfile.mkdtemp(prefix="sextant-read-rss-")
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEXTANT_")}
        env.update(PYTHONPATH=str(root), SEXTANT_LOG_LEVEL="WARNING", SEXTANT_DB_URL=url)
        # The server migrates the database with its own tree's migrations, then the rows go in.
        server = subprocess.Popen(
            [sys.executable, "-m", "services.db_manager", "--port", str(port), "--data-dir", tmp], cwd=root, env=env,
            stdout=subprocess.DEVNULL, stderr=open(f"{tmp}/db_manager.log", "wb"), start_new_session=True)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", -1)])
        grpc.channel_ready_future(channel).result(timeout=60)
        base = datetime(2024, 1, 1)
        with db.write() as conn:
            for start in range(0, rows, 20_000):
                conn.execute(observation_logs.insert(), [
                    {"trial_name": "big", "time": base + timedelta(milliseconds=i),
                     "metric_name": "loss" if i % 2 else "accuracy", "value": f"0.{i:06d}"}
                    for i in range(start, min(rows, start + 20_000))])
        stub = api_pb2_grpc.DBManagerStub(channel)
        # One small call first, so the figure before counts the warm server (pools, imports).
        stub.GetObservationLog(api_pb2.GetObservationLogRequest(trial_name="none"))
        before = memory_kib(server.pid)
        start = time.perf_counter()
        out: dict[str, Any] = {"backend": backend, "driver": db.engine.dialect.driver, "rows": rows}
        try:
            reply = stub.GetObservationLog(api_pb2.GetObservationLogRequest(trial_name="big"), timeout=600)
            out.update(returned=len(reply.observation_log.metric_logs), reply_mb=round(reply.ByteSize() / 2**20, 1))
        except grpc.RpcError as err:
            out.update(code=err.code().name, details=err.details()[:200])
        out["seconds"] = round(time.perf_counter() - start, 2)
        after = memory_kib(server.pid)
        out.update(rss_before_mb=round(before["VmRSS"] / 1024, 1), peak_mb=round(after["VmHWM"] / 1024, 1),
                   growth_mb=round((after["VmHWM"] - before["VmRSS"]) / 1024, 1), load=os.getloadavg()[0])
        channel.close()
        return out
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
        db.dispose()
        drop()
        shutil.rmtree(tmp, ignore_errors=True)


# -- --rpc-cpu ----------------------------------------------------------------------------------

def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a live process (its own threads), from /proc/<pid>/stat."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    f = raw[raw.rfind(")") + 2:].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


OWNER = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "name": "bench", "uid": "", "controller": True}


def experiment_doc(trials: int) -> dict:
    names = [f"bench-{i:08x}" for i in range(trials)]
    return {
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment",
        "metadata": {"name": "bench", "namespace": "bench"},
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "score"},
            "algorithm": {"algorithmName": "random"},
            "parallelTrialCount": 20, "maxTrialCount": 500, "maxFailedTrialCount": 500,
            "parameters": [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}],
            "trialTemplate": {
                "retain": True, "primaryContainerName": "main",
                "trialParameters": [{"name": "x", "reference": "x"}],
                "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
                    "containers": [{"name": "main", "image": "none", "command": ["/bin/echo", "score=${trialParameters.x}"]}],
                    "restartPolicy": "Never"}}}},
            },
        },
        "status": {
            "startTime": "2024-01-01T00:00:00Z",
            "conditions": [{"type": "Created", "status": "True", "reason": "ExperimentCreated",
                            "message": "Experiment is created", "lastUpdateTime": "2024-01-01T00:00:00Z",
                            "lastTransitionTime": "2024-01-01T00:00:00Z"},
                           {"type": "Running", "status": "True", "reason": "ExperimentRunning",
                            "message": "Experiment is running", "lastUpdateTime": "2024-01-01T00:00:00Z",
                            "lastTransitionTime": "2024-01-01T00:00:00Z"}],
            "currentOptimalTrial": {"bestTrialName": names[0],
                                    "parameterAssignments": [{"name": "x", "value": "0.99"}],
                                    "observation": {"metrics": [{"name": "score", "min": "0.99", "max": "0.99",
                                                                 "latest": "0.99"}]}},
            "succeededTrialList": names[:-20], "runningTrialList": names[-20:],
            "trials": trials, "trialsSucceeded": trials - 20, "trialsRunning": 20,
        },
    }


def suggestion_doc(assignments: int, owner_uid: str) -> dict:
    return {
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Suggestion",
        "metadata": {"name": "bench", "namespace": "bench",
                     "labels": {"katib.kubeflow.org/experiment": "bench"},
                     "ownerReferences": [{**OWNER, "uid": owner_uid}]},
        "spec": {"algorithm": {"algorithmName": "random"}, "requests": assignments},
        "status": {
            "suggestionCount": assignments,
            "suggestions": [{"name": f"bench-{i:08x}", "parameterAssignments": [{"name": "x", "value": f"0.{i:06d}"}],
                             "labels": {"katib.kubeflow.org/experiment": "bench"}} for i in range(assignments)],
            "startTime": "2024-01-01T00:00:00Z",
            "conditions": [{"type": "Created", "status": "True", "reason": "SuggestionCreated",
                            "message": "Suggestion is created", "lastUpdateTime": "2024-01-01T00:00:00Z",
                            "lastTransitionTime": "2024-01-01T00:00:00Z"},
                           {"type": "Running", "status": "True", "reason": "SuggestionRunning",
                            "message": "Suggestion is running", "lastUpdateTime": "2024-01-01T00:00:00Z",
                            "lastTransitionTime": "2024-01-01T00:00:00Z"}],
        },
    }


def trial_doc(name: str, owner_uid: str) -> dict:
    return {
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Trial",
        "metadata": {"name": name, "namespace": "bench",
                     "labels": {"katib.kubeflow.org/experiment": "bench"},
                     "ownerReferences": [{**OWNER, "uid": owner_uid}]},
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "score", "metricStrategies": [
                {"name": "score", "value": "max"}]},
            "parameterAssignments": [{"name": "x", "value": "0.5"}],
            "runSpec": {"apiVersion": "batch/v1", "kind": "Job",
                        "metadata": {"name": name, "namespace": "bench"},
                        "spec": {"template": {"spec": {"containers": [
                            {"name": "main", "image": "none", "command": ["/bin/echo", "score=0.5"]}],
                            "restartPolicy": "Never"}}}},
            "primaryContainerName": "main",
            "metricsCollector": {"collector": {"kind": "StdOut"}},
        },
    }


def condition(kind: str, i: int) -> dict:
    stamp_ = (datetime(2024, 1, 1) + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "Running", "status": "True", "reason": f"{kind}Running", "message": f"{kind} is running",
            "lastUpdateTime": stamp_, "lastTransitionTime": stamp_}


class Watchers:
    """Watch streams drained by threads; each remembers the highest version it received."""

    def __init__(self, stub, kinds: list[str], per_kind: int, since: int):
        self.seen: dict[int, int] = {}
        self.calls = []
        self.kind_of: dict[int, str] = {}
        for kind in kinds:
            for _ in range(per_kind):
                i = len(self.calls)
                call = stub.Watch(store_pb2.WatchRequest(kind=kind, namespace="bench", since_resource_version=since))
                self.calls.append(call)
                self.seen[i] = since
                self.kind_of[i] = kind
                threading.Thread(target=self._drain, args=(i, call), daemon=True).start()

    def _drain(self, i: int, call) -> None:
        try:
            for event in call:
                if event.type != store_pb2.WatchEvent.BOOKMARK:
                    self.seen[i] = event.resource_version
        except grpc.RpcError:
            pass

    def wait(self, kind: str, version: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while any(self.seen[i] < version for i, k in self.kind_of.items() if k == kind):
            if time.monotonic() > deadline:
                raise TimeoutError(f"watchers of {kind} did not reach version {version}")
            time.sleep(0.002)

    def close(self) -> None:
        for call in self.calls:
            call.cancel()


class Target:
    """One DB manager process (from ``root``) on its own fresh database, with its client state."""

    def __init__(self, backend: str, root: Path, assignments: int, watches_per_kind: int):
        self.url, self._drop = fresh_database(backend)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        tmp = tempfile.mkdtemp(prefix="sextant-rpc-cpu-")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEXTANT_")}
        env.update(PYTHONPATH=str(root), SEXTANT_LOG_LEVEL="WARNING", SEXTANT_DB_URL=self.url)
        self.server = subprocess.Popen(
            [sys.executable, "-m", "services.db_manager", "--port", str(port), "--data-dir", tmp], cwd=root, env=env,
            stdout=subprocess.DEVNULL, stderr=open(f"{tmp}/db_manager.log", "wb"), start_new_session=True)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", -1)])
        grpc.channel_ready_future(self.channel).result(timeout=60)
        self.stub = stub = store_pb2_grpc.ResourceStoreStub(self.channel)
        self.obs = api_pb2_grpc.DBManagerStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)
        # Set-up (not measured): the experiment, its suggestion, a trial to read and update.
        exp = doc_from_proto(stub.Create(store_pb2.CreateRequest(resource=proto_from_doc(experiment_doc(assignments)))))
        exp = doc_from_proto(stub.UpdateStatus(store_pb2.UpdateRequest(resource=proto_from_doc(
            {**exp, "status": experiment_doc(assignments)["status"]}))))
        self.uid = uid = exp["metadata"]["uid"]
        sug = doc_from_proto(stub.Create(store_pb2.CreateRequest(resource=proto_from_doc(suggestion_doc(assignments, uid)))))
        sug = doc_from_proto(stub.UpdateStatus(store_pb2.UpdateRequest(resource=proto_from_doc(
            {**sug, "status": suggestion_doc(assignments, uid)["status"]}))))
        trial = doc_from_proto(stub.Create(store_pb2.CreateRequest(resource=proto_from_doc(trial_doc("bench-t", uid)))))
        self.watchers = Watchers(stub, ["Experiment", "Suggestion", "Trial"], watches_per_kind,
                                 int(trial["metadata"]["resourceVersion"]))
        trial["status"] = {"startTime": "2024-01-01T00:00:00Z", "conditions": [condition("Trial", 0)]}
        self.docs = {"Experiment": exp, "Suggestion": sug, "Trial": trial}
        self.results: dict[str, list[float]] = {}

    def cpu(self) -> float:
        return process_cpu(self.server.pid)

    def close(self) -> None:
        self.watchers.close()
        self.channel.close()
        if self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGTERM)
            try:
                self.server.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
        self._drop()


def _calls(t: Target, calls: int, assignments: int) -> list[tuple[str, str | None, Any]]:
    """(label, kind whose watchers must catch up, one call(i) -> version written or None)."""
    stub, obs, docs = t.stub, t.obs, t.docs

    def get(kind):
        def one(_i):
            stub.Get(store_pb2.GetRequest(kind=kind, namespace="bench", name=docs[kind]["metadata"]["name"]))
        return one

    def update_status(kind):
        def one(i):
            doc = docs[kind]
            status = copy.deepcopy(doc["status"])
            status["conditions"][-1] = condition(kind, i + 1)  # a new lastUpdateTime
            out = doc_from_proto(stub.UpdateStatus(store_pb2.UpdateRequest(
                resource=proto_from_doc({**doc, "status": status}))))
            docs[kind] = out
            return int(out["metadata"]["resourceVersion"])
        return one

    def update_suggestion_spec(i):
        doc = docs["Suggestion"]
        out = doc_from_proto(stub.Update(store_pb2.UpdateRequest(resource=proto_from_doc(
            {**doc, "spec": {**doc["spec"], "requests": assignments + i + 1}}))))
        docs["Suggestion"] = out
        return int(out["metadata"]["resourceVersion"])

    def create_trial(i):
        out = stub.Create(store_pb2.CreateRequest(resource=proto_from_doc(trial_doc(f"bench-{i:06d}", t.uid))))
        return out.metadata.resource_version

    def report(i):
        obs.ReportObservationLog(api_pb2.ReportObservationLogRequest(
            trial_name=f"bench-{i:06d}", observation_log=api_pb2.ObservationLog(metric_logs=[
                api_pb2.MetricLog(time_stamp=stamp(j), metric=api_pb2.Metric(name="score", value=f"0.{j}"))
                for j in range(3)])))

    def get_logs(i):  # the logs the ReportObservationLog phase just wrote
        reply = obs.GetObservationLog(api_pb2.GetObservationLogRequest(trial_name=f"bench-{i - calls:06d}"))
        assert len(reply.observation_log.metric_logs) == 3

    return [
        ("Health.Check (gRPC floor)", None, lambda _i: t.health.Check(health_pb2.HealthCheckRequest())),
        ("Create Trial", "Trial", create_trial),
        ("Get Trial", None, get("Trial")),
        ("UpdateStatus Trial", "Trial", update_status("Trial")),
        ("Get Suggestion", None, get("Suggestion")),
        ("UpdateStatus Suggestion", "Suggestion", update_status("Suggestion")),
        ("Update Suggestion", "Suggestion", update_suggestion_spec),
        ("Get Experiment", None, get("Experiment")),
        ("UpdateStatus Experiment", "Experiment", update_status("Experiment")),
        ("ReportObservationLog", None, report),
        ("GetObservationLog", None, get_logs),
    ]


def rpc_cpu(backend: str, calls: int, assignments: int, watches_per_kind: int = 3, rounds: int = 3,
            compare_root: Path | None = None) -> dict:
    """Server CPU per call by method; with ``compare_root``, a second DB manager run from that
    source tree (e.g. an older checkout) gets the same calls, phase by phase, interleaved, so
    both see the same machine load."""
    roots = {"this": ROOT} if compare_root is None else {"this": ROOT, "other": compare_root}
    targets: dict[str, Target] = {}
    try:
        for name, root in roots.items():
            targets[name] = Target(backend, root, assignments, watches_per_kind)
        time.sleep(0.5)
        phases = {name: _calls(t, calls, assignments) for name, t in targets.items()}
        n = len(phases["this"])
        for r in range(rounds):  # the median of several rounds: the machine is shared
            for p in range(n):
                first = (r * n + p) * calls  # call numbers: unique names and timestamps in every phase
                order = list(targets) if (r + p) % 2 == 0 else list(reversed(targets))
                for name in order:
                    t = targets[name]
                    label, kind, one = phases[name][p]
                    time.sleep(0.2)  # let the previous phase's stragglers settle
                    before = t.cpu()
                    last = 0
                    for i in range(first, first + calls):
                        last = one(i) or last
                    if kind:
                        t.watchers.wait(kind, last)
                    t.results.setdefault(label, []).append((t.cpu() - before) / calls * 1000)
        out: dict[str, Any] = {"backend": backend, "calls_per_phase": calls, "rounds": rounds,
                               "assignments": assignments, "watches_per_kind": watches_per_kind}
        for name, t in targets.items():
            before = t.cpu()
            time.sleep(2)
            key = "" if name == "this" else f" ({compare_root})"
            out[f"cpu_ms_per_call_median{key}"] = {k: round(statistics.median(v), 2) for k, v in t.results.items()}
            out[f"cpu_ms_per_call_rounds{key}"] = {k: [round(x, 2) for x in v] for k, v in t.results.items()}
            out[f"idle_cpu_ms_per_s{key}"] = round((t.cpu() - before) / 2 * 1000, 2)
        out["load"] = os.getloadavg()[0]
        return out
    finally:
        for t in targets.values():
            t.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "mariadb", "postgresql"], default="sqlite")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the table for the read test")
    parser.add_argument("--per-trial", type=int, default=100, help="rows per trial in the read test")
    parser.add_argument("--write-rows", type=int, default=100_000, help="rows written per batch size")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--mysql-driver", choices=["pymysql", "mysqldb"], default=None,
                        help="MariaDB driver (default: mysqlclient when installed, else PyMySQL)")
    parser.add_argument("--read-rss", type=int, default=None, metavar="N",
                        help="measure the server's peak memory while it returns one trial's N logs instead")
    parser.add_argument("--rpc-cpu", action="store_true", help="measure the server's CPU per call instead")
    parser.add_argument("--calls", type=int, default=400, help="--rpc-cpu: calls per method")
    parser.add_argument("--assignments", type=int, default=250,
                        help="--rpc-cpu: assignments in the Suggestion, trials in the Experiment's lists")
    parser.add_argument("--watches-per-kind", type=int, default=3, help="--rpc-cpu: open watches per kind")
    parser.add_argument("--rounds", type=int, default=3, help="--rpc-cpu: rounds over all phases (median)")
    parser.add_argument("--compare-root", type=Path, default=None,
                        help="--rpc-cpu: also run a DB manager from this source tree, interleaved; "
                             "--read-rss: run the DB manager from this tree instead")
    args = parser.parse_args()
    if args.mysql_driver:
        ADMIN["mariadb"] = str(sa.engine.make_url(ADMIN["mariadb"]).set(drivername=f"mysql+{args.mysql_driver}")
                               .render_as_string(False))
    if args.read_rss is not None:
        print(json.dumps(read_rss(args.backend, args.read_rss, args.compare_root or ROOT)))
        return
    if args.rpc_cpu:
        print(json.dumps(rpc_cpu(args.backend, args.calls, args.assignments, args.watches_per_kind, args.rounds,
                                 args.compare_root)))
        return
    url, drop = fresh_database(args.backend)
    db = Database(url)
    try:
        migrate(db)
        app = DBManagerApp(ServerSettings(port=0, max_workers=16), db)
        port = app.start()
        stub = api_pb2_grpc.DBManagerStub(grpc.insecure_channel(f"127.0.0.1:{port}",
                                                                options=[("grpc.max_send_message_length", -1)]))
        print(f"backend={args.backend} driver={db.engine.dialect.driver}")
        for batch, rows in ((1, min(args.write_rows, 3000)), (100, args.write_rows), (1000, args.write_rows)):
            print(f"report batch={batch:<5} rows={rows:<7} {bench_report(stub, batch, rows):10.0f} rows/s")
        with db.write() as conn:
            conn.execute(observation_logs.delete())
        trials = args.rows // args.per_trial
        start = time.perf_counter()
        fill(db, trials, args.per_trial)
        print(f"filled {trials * args.per_trial} rows ({trials} trials) in {time.perf_counter() - start:.1f}s")
        for metric, label in (("loss", "one metric"), ("", "all metrics")):
            lat = sorted(bench_get(stub, trials, args.queries, metric))
            print(f"get {label:<11} ({args.per_trial if not metric else args.per_trial // 2} rows/reply): "
                  f"p50={statistics.median(lat):.2f}ms p95={lat[int(len(lat) * 0.95)]:.2f}ms "
                  f"mean={statistics.fmean(lat):.2f}ms")
        app.stop()
    finally:
        db.dispose()
        drop()


if __name__ == "__main__":
    main()
