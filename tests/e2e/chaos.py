"""Chaos against a whole local stack: kills, database outages and hostile requests while several
experiments run, then exact accounting.

Used by ``tests/e2e/test_chaos.py`` (short, in the default suite) and ``bench/chaos.py`` (long).
The stack (`sextant up`) talks to a fresh PostgreSQL or MariaDB database through a loopback TCP
proxy (``TcpProxy``) that the run cuts and restores: the shared database servers themselves are
never touched. Meanwhile, at seeded random moments, the run

* kills with SIGKILL one of: the DB manager, a controller, the API server, the shared algorithm
  service or a running trial's wrapper (the supervisor and the suggestion controller restart
  what they own; a trial whose wrapper died fails);
* cuts every database connection for a few seconds (refusing new ones), then lets them in again;
* sends hostile requests to the DB manager and the algorithm service (oversized, malformed,
  unknown names), each of which must be refused with a clear status, never INTERNAL or a hang;

and samples the resident memory of every service. Afterwards every experiment must have ended
Succeeded with exactly its ``maxTrialCount`` trials, unique names and assignments, and every
Succeeded trial exactly the metric lines its trainer printed in the observation log (nothing lost,
nothing written twice); every service's peak RSS must stay under ``RSS_BOUND_MB``.
"""

from __future__ import annotations

import contextlib
import os
import random
import selectors
import signal
import socket
import subprocess
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import sqlalchemy as sa

from sextant.api import api_pb2, api_pb2_grpc, store_pb2, store_pb2_grpc
from sextant.channel import open_channel
from sextant.katib import experiment_status
from sextant.resources.admission import admit_experiment
from sextant.store.client import GrpcResourceStore
from tests.e2e.local_stack import cli_env, run_cli
from tests.integration.bad_input_support import raw_resource

RSS_BOUND_MB = 300
"""Peak resident memory allowed to any one service process of the stack during a chaos run (the
DB manager, each controller, the API server, the supervisor, the algorithm service)."""

LINES = ("score=0.01", "score=0.02")  # + score=<x>: three metric lines per trial
TRAINER = ["python", "-c",
           "import sys, time\nfor line in sys.argv[1:]:\n    print(line, flush=True)\n    time.sleep(0.15)",
           *LINES, "score=${trialParameters.x}"]
SERVICES = ("db-manager", "experiment-controller", "suggestion-controller", "trial-controller", "api-server")
KILL_TARGETS = (*SERVICES, "algorithm-service", "trial-wrapper")
NAMESPACE = "chaos"


@dataclass
class ChaosPlan:
    experiments: int = 3
    trials: int = 8
    parallel: int = 2
    kills: int = 2
    outages: int = 1
    outage_seconds: float = 3.0
    hostile_rounds: int = 2
    spread_seconds: float = 12.0  # the disruptions fall at random moments in this window
    seed: int = 21
    backend: str = "postgresql"
    finish_timeout: float = 300.0


@dataclass
class ChaosReport:
    actions: list[tuple[float, str, str]] = field(default_factory=list)  # (at s, action, detail)
    peak_rss_mb: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    hostile: dict[str, str] = field(default_factory=dict)  # request -> status code name
    trials: int = 0
    succeeded: int = 0
    failed: int = 0
    wall_s: float = 0.0


# ---- the database proxy ------------------------------------------------------------------------


class TcpProxy:
    """A loopback TCP proxy to ``target``; ``cut()`` drops every connection and refuses new
    ones until ``restore()``."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._lock = threading.Lock()
        self._cut = threading.Event()
        self._stop = threading.Event()
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self._cut.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            pair = (client, upstream)
            with self._lock:
                self._pairs.add(pair)
            threading.Thread(target=self._pump, args=(pair,), name="proxy-pump", daemon=True).start()

    def _pump(self, pair: tuple[socket.socket, socket.socket]) -> None:
        client, upstream = pair
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, upstream)
        sel.register(upstream, selectors.EVENT_READ, client)
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.5):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            sel.close()
            self._close(pair)

    def _close(self, pair: tuple[socket.socket, socket.socket]) -> None:
        with self._lock:
            self._pairs.discard(pair)
        for sock in pair:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            self._close(pair)

    def restore(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self._stop.set()
        self.cut()
        self.listener.close()


# ---- the stack's processes ---------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "stat").read_text()
            except OSError:
                continue
            out[int(raw[raw.rfind(")") + 2:].split()[1])].append(int(entry.name))
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _rss_mb(pid: int) -> float:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, IndexError, ValueError):
        return 0.0


class Stack:
    def __init__(self, data_dir: Path, db_url: str):
        self.data_dir = data_dir
        self.env = cli_env({"SEXTANT_DB_URL": db_url, "SEXTANT_LOG_LEVEL": "WARNING"})

    def sextant(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return run_cli(self.data_dir, *args, timeout=timeout, env=self.env)

    def pid(self, name: str) -> int | None:
        try:
            return int((self.data_dir / "run" / f"{name}.pid").read_text())
        except (OSError, ValueError):
            return None

    def address(self) -> str:
        return (self.data_dir / "address").read_text().strip()

    def token(self) -> str:
        return (self.data_dir / "token").read_text().strip()

    def service_pids(self) -> dict[str, int]:
        """Every service process: the supervisor's services, the supervisor, algorithm services."""
        pids = {name: pid for name in (*SERVICES, "supervisor") if (pid := self.pid(name))}
        suggestion = pids.get("suggestion-controller")
        if suggestion:
            for child in _children().get(suggestion, []):
                if "services.suggestion.algorithms" in _cmdline(child):
                    pids[f"algorithm-service-{child}"] = child
        return pids

    def trial_wrappers(self) -> list[int]:
        trial_controller = self.pid("trial-controller")
        return [p for p in _children().get(trial_controller or -1, [])
                if "sextant-jobwrap" in _cmdline(p) or "services.metrics_collector" in _cmdline(p)]

    def sample_rss(self, report: ChaosReport) -> None:
        for name, pid in self.service_pids().items():
            kind = "algorithm-service" if name.startswith("algorithm-service") else name
            report.peak_rss_mb[kind] = max(report.peak_rss_mb[kind], _rss_mb(pid))


def _kill(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False


# ---- hostile requests --------------------------------------------------------------------------

REFUSALS = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.OUT_OF_RANGE,
            grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.FAILED_PRECONDITION}
# Answers that say "not now" rather than "no": a service may be down or restarting mid-chaos.
UNREACHABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


def _experiment_message(count: str = "1e9") -> api_pb2.Experiment:
    return api_pb2.Experiment(name="chaos-hostile", spec=api_pb2.ExperimentSpec(
        algorithm=api_pb2.AlgorithmSpec(algorithm_name="random"),
        objective=api_pb2.ObjectiveSpec(type=api_pb2.MAXIMIZE, objective_metric_name="score"),
        parameter_specs=api_pb2.ExperimentSpec.ParameterSpecs(parameters=[api_pb2.ParameterSpec(
            name="x", parameter_type=api_pb2.DOUBLE, feasible_space=api_pb2.FeasibleSpace(min="-1e308", max=count))]),
        max_trial_count=10, parallel_trial_count=2))


def _read_over_the_limit(db: api_pb2_grpc.DBManagerStub) -> None:
    """Writes one log more than a read may return, in two legal batches (a later round repeats
    them: they are recognised and stored once), then reads the whole trial back."""
    from sextant.limits import MAX_OBSERVATION_LOGS, MAX_OBSERVATION_READ

    trial = "chaos-hostile-reader"
    stamps = [f"2024-01-01T00:{i // 60_000_000:02d}:{i // 1_000_000 % 60:02d}.{i % 1_000_000:06d}Z"
              for i in range(MAX_OBSERVATION_READ + 1)]
    for start in range(0, len(stamps), MAX_OBSERVATION_LOGS):
        db.ReportObservationLog(api_pb2.ReportObservationLogRequest(
            trial_name=trial, observation_log=api_pb2.ObservationLog(metric_logs=[
                api_pb2.MetricLog(time_stamp=t, metric=api_pb2.Metric(name="score", value="1"))
                for t in stamps[start:start + MAX_OBSERVATION_LOGS]])), timeout=60)
    db.GetObservationLog(api_pb2.GetObservationLogRequest(trial_name=trial), timeout=60)


def hostile_round(stack: Stack, report: ChaosReport, rng: random.Random) -> None:
    """Sends each hostile request once; records the status; fails on INTERNAL or an OK."""
    token = stack.token()
    channel = open_channel(stack.address(), token=token)
    db = api_pb2_grpc.DBManagerStub(channel)
    resources = store_pb2_grpc.ResourceStoreStub(channel)
    bad = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": "chaos-bad"},
           "spec": {"parallelTrialCount": 2**31 - 1, "maxTrialCount": 2**31 - 1,
                    "objective": {"type": "maximize", "objectiveMetricName": "score\nevil=1"},
                    "parameters": [{"name": "x", "parameterType": "int",
                                    "feasibleSpace": {"min": "-9223372036854775809", "max": "1"}}]}}
    calls: list[tuple[str, Any]] = [
        ("experiment-out-of-bounds", lambda: resources.Create(store_pb2.CreateRequest(
            resource=raw_resource(bad)), timeout=30)),
        ("report-100001-logs", lambda: db.ReportObservationLog(api_pb2.ReportObservationLogRequest(
            trial_name="chaos-hostile-trial", observation_log=api_pb2.ObservationLog(metric_logs=[
                api_pb2.MetricLog(time_stamp="2024-01-01T00:00:00Z", metric=api_pb2.Metric(name="score", value="1"))
                for _ in range(100_001)])), timeout=30)),
        ("report-bad-timestamp", lambda: db.ReportObservationLog(api_pb2.ReportObservationLogRequest(
            trial_name="chaos-hostile-trial", observation_log=api_pb2.ObservationLog(metric_logs=[
                api_pb2.MetricLog(time_stamp="x" * 100_000, metric=api_pb2.Metric(name="score", value="1"))])),
            timeout=30)),
        ("read-over-limit", lambda: _read_over_the_limit(db)),
    ]
    algorithm = next((pid for name, pid in stack.service_pids().items() if name.startswith("algorithm-service")), None)
    address = _algorithm_address(stack, algorithm)
    if address:
        suggestion = api_pb2_grpc.SuggestionStub(open_channel(address, token=token))
        calls += [
            ("suggest-1e9", lambda: suggestion.GetSuggestions(api_pb2.GetSuggestionsRequest(
                experiment=_experiment_message("1"), current_request_number=10**9), timeout=30)),
            ("suggest-overflow", lambda: suggestion.GetSuggestions(api_pb2.GetSuggestionsRequest(
                experiment=_experiment_message("1e308"), current_request_number=5), timeout=30)),
        ]
    rng.shuffle(calls)
    try:
        for name, call in calls:
            try:
                call()
                code = grpc.StatusCode.OK
            except grpc.RpcError as err:
                code = err.code()
            report.hostile[name] = code.name
            assert code in REFUSALS | UNREACHABLE, f"hostile request {name}: {code.name}"
    finally:
        channel.close()


def _algorithm_address(stack: Stack, pid: int | None) -> str | None:
    import json

    for state in (stack.data_dir / "services").glob("*/*/state.json"):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            doc = json.loads(state.read_text())
            if pid is None or doc["main"]["pid"] == pid:
                return str(doc["address"])
    return None


# ---- the workload and the checks ---------------------------------------------------------------


def experiment_doc(name: str, plan: ChaosPlan) -> dict[str, Any]:
    return {
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "score", "goal": 5},
            "algorithm": {"algorithmName": "random"},
            "parallelTrialCount": plan.parallel, "maxTrialCount": plan.trials, "maxFailedTrialCount": plan.trials,
            "parameters": [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0.1", "max": "0.9"}}],
            "trialTemplate": {
                "primaryContainerName": "main",
                "trialParameters": [{"name": "x", "reference": "x"}],
                "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
                    "containers": [{"name": "main", "image": "none", "command": TRAINER}],
                    "restartPolicy": "Never"}}}},
            },
        },
    }


def verify(stack: Stack, names: list[str], plan: ChaosPlan, report: ChaosReport) -> None:
    """Exact trial counts, unique names and assignments, every metric line once."""
    store = GrpcResourceStore(stack.address(), token=stack.token(), retry_seconds=120)
    channel = open_channel(stack.address(), token=stack.token())
    db = api_pb2_grpc.DBManagerStub(channel)
    try:
        for name in names:
            exp = store.get("Experiment", NAMESPACE, name)
            assert experiment_status.is_succeeded(exp), f"{name}: {exp.status.conditions[-1:]}"
            trials, _ = store.list("Trial", NAMESPACE, {"katib.kubeflow.org/experiment": name})
            assert len(trials) == plan.trials, f"{name}: {len(trials)} trials, {plan.trials} expected"
            assert len({t.metadata.name for t in trials}) == plan.trials, f"{name}: duplicate trial names"
            points = [tuple((a.name, a.value) for a in t.spec.parameter_assignments) for t in trials]
            assert len(set(points)) == plan.trials, f"{name}: duplicate assignments"
            for trial, point in zip(trials, points, strict=True):
                logs = db.GetObservationLog(api_pb2.GetObservationLogRequest(
                    trial_name=trial.metadata.name, metric_name="score"), timeout=60).observation_log.metric_logs
                values = sorted(m.metric.value for m in logs)
                report.trials += 1
                if any(c.type == "Succeeded" and c.status == "True" for c in trial.status.conditions):
                    report.succeeded += 1
                    expected = sorted([line.split("=")[1] for line in LINES] + [dict(point)["x"]])
                    assert values == expected, f"{trial.metadata.name}: observation log {values}, expected {expected}"
                else:
                    report.failed += 1
                    assert len(values) <= len(LINES) + 1, f"{trial.metadata.name}: {values}"
    finally:
        channel.close()
        store.close()


def run_chaos(plan: ChaosPlan, workdir: Path) -> ChaosReport:
    """The whole run; raises AssertionError on any broken invariant."""
    from tests.integration.conftest import create_database

    report = ChaosReport()
    url, drop = create_database(plan.backend, workdir)
    parsed = sa.engine.make_url(url)
    proxy = TcpProxy((parsed.host or "127.0.0.1", int(parsed.port or (5432 if plan.backend == "postgresql" else 3306))))
    proxied = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    stack = Stack(workdir / "stack", proxied)
    rng = random.Random(plan.seed)
    started = time.monotonic()
    try:
        up = stack.sextant("up", "--detach", "--port", "0")
        assert up.returncode == 0, up.stdout + up.stderr
        store = GrpcResourceStore(stack.address(), token=stack.token(), retry_seconds=120)
        names = [f"chaos-{i:02d}" for i in range(plan.experiments)]
        try:
            for name in names:
                store.create(admit_experiment(experiment_doc(name, plan)))
        finally:
            store.close()
        actions = (["kill"] * plan.kills + ["outage"] * plan.outages + ["hostile"] * plan.hostile_rounds)
        schedule = sorted((rng.uniform(0.5, plan.spread_seconds), action) for action in actions)
        begin = time.monotonic()
        for at, action in schedule:
            while time.monotonic() < begin + at:
                stack.sample_rss(report)
                time.sleep(0.1)
            elapsed = round(time.monotonic() - begin, 2)
            if action == "kill":
                target = rng.choice(KILL_TARGETS)
                pid = None
                # e.g. no trial running while the stack recovers from the last blow: wait for one,
                # then settle for a service (always there, the supervisor restarts them).
                patience = time.monotonic() + 20
                while pid is None:
                    if time.monotonic() > patience and target not in SERVICES:
                        target = rng.choice(SERVICES)
                    if time.monotonic() > patience + 30:
                        break
                    if target == "algorithm-service":
                        pids = [p for n, p in stack.service_pids().items() if n.startswith("algorithm-service")]
                    elif target == "trial-wrapper":
                        pids = stack.trial_wrappers()
                    else:
                        pids = [p for p in [stack.pid(target)] if p]
                    candidate = rng.choice(sorted(pids)) if pids else None
                    if candidate and _kill(candidate):
                        pid = candidate
                    else:
                        time.sleep(0.05)
                report.actions.append((elapsed, "kill -9", f"{target} {pid or '(none found)'}"))
            elif action == "outage":
                proxy.cut()
                report.actions.append((elapsed, "database cut", f"{plan.outage_seconds} s"))
                end = time.monotonic() + plan.outage_seconds
                while time.monotonic() < end:
                    stack.sample_rss(report)
                    time.sleep(0.1)
                proxy.restore()
            else:
                report.actions.append((elapsed, "hostile requests", ""))
                hostile_round(stack, report, rng)
        deadline = time.monotonic() + plan.finish_timeout
        watcher = GrpcResourceStore(stack.address(), token=stack.token(), retry_seconds=120)
        try:
            while True:
                stack.sample_rss(report)
                finished = [n for n in names
                            if experiment_status.is_finished(watcher.get("Experiment", NAMESPACE, n))]
                if len(finished) == len(names):
                    break
                assert time.monotonic() < deadline, f"not finished: {sorted(set(names) - set(finished))}"
                time.sleep(0.5)
        finally:
            watcher.close()
        report.wall_s = round(time.monotonic() - started, 1)
        verify(stack, names, plan, report)
        over = {k: round(v) for k, v in report.peak_rss_mb.items() if v > RSS_BOUND_MB}
        assert not over, f"services over {RSS_BOUND_MB} MB: {over}"
        return report
    finally:
        stack.sextant("down")
        proxy.close()
        drop()
