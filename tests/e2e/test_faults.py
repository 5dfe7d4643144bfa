"""Fault injection on a real local stack (`sextant up`): kill -9 a piece mid-experiment and check
that nothing is lost or duplicated.

Each *run* is one experiment (maxTrialCount 40, parallelTrialCount 4, random, a trivial trainer
that prints three ``score=`` lines) and one ``kill -9`` of one target at a seeded random moment:
the DB manager, each controller, the algorithm service or a running trial's wrapper (the
process that records its exit code). The supervisor (``sextant up``) restarts services; the
suggestion controller restarts the algorithm service; the trial controller notices a dead
wrapper and fails that trial. Afterwards the experiment must have
exactly 40 trials, unique trial names and assignments, an observation for every succeeded
trial and all three metric lines of each in the observation log.

Runs are executed ``SEXTANT_FAULT_PARALLEL`` (default 2) experiments at a time to fit the
budget. ``SEXTANT_FAULT_RUNS`` (default 10; `make test-faults` sets 30) sets how many;
``SEXTANT_FAULT_SEED`` the seed. The DB-manager outage test stops it with SIGSTOP for
``SEXTANT_FAULT_OUTAGE`` seconds (default 8 here; 30 under the ``faults`` marker).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from sextant.api import api_pb2, api_pb2_grpc
from sextant.channel import open_channel
from tests.e2e.local_stack import run_cli
from tests.experiments import small_experiment

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("faults")]

RUNS = int(os.environ.get("SEXTANT_FAULT_RUNS", "10"))
PARALLEL = int(os.environ.get("SEXTANT_FAULT_PARALLEL", "2"))
SEED = int(os.environ.get("SEXTANT_FAULT_SEED", "20240"))
TARGETS = ["db-manager", "experiment-controller", "suggestion-controller", "trial-controller",
           "algorithm-service", "trial-wrapper"]
MAX_TRIALS = 40
LINES = 3  # score lines each trial prints
# Seeded runs (random_state) once repeated assignments after a DB-manager kill; fixed by sending
# recorded-but-not-created assignments as pending trials. test_seeded_random_no_duplicates
# (faults marker) guards it; set SEXTANT_FAULT_SEEDED_ALGORITHM=1 to seed every run.
SEEDED_ALGORITHM = os.environ.get("SEXTANT_FAULT_SEEDED_ALGORITHM") == "1"
RESULTS_ENV = os.environ.get("SEXTANT_FAULT_RESULTS")  # default: fault-results.jsonl in the stack's directory


def results_file(stack: Stack) -> Path:
    return Path(RESULTS_ENV) if RESULTS_ENV else stack.data_dir / "fault-results.jsonl"

# printf turns each backslash-n into a newline: three score lines (the last is x) and a y line.
# Each trial prints its lines 0.2 s apart, so a 40-trial experiment spans several seconds and
# every kill moment (below) falls while trials, their collectors and the algorithm are alive.
TRAINER = ["python", "-c",
           "import sys, time\nfor line in sys.argv[1:]:\n    print(line, flush=True)\n    time.sleep(0.2)",
           "score=0.01", "score=0.02", "score=${trialParameters.x}", "y=${trialParameters.y}"]


def experiment(name: str, random_state: str | None = None) -> str:
    return small_experiment(name, TRAINER, goal=5, algorithm_settings={"random_state": random_state} if random_state
                            else None, max_trials=MAX_TRIALS, parallel=4, max_failed=MAX_TRIALS,
                            parameters=[("x", "double", "0.1", "0.9"), ("y", "int", "1", "1000000")])


@dataclass
class Stack:
    data_dir: Path

    def sextant(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return run_cli(self.data_dir, *args, timeout=timeout)

    def sextant_retry(self, *args: str, deadline: float = 420) -> subprocess.CompletedProcess:
        """The CLI gives up on an unreachable stack after a few seconds (right for a user); here
        the DB manager may be restarting after a kill, so try again until the deadline."""
        end = time.monotonic() + deadline
        while True:
            done = self.sextant(*args, timeout=max(10.0, end - time.monotonic()))
            if done.returncode == 0 or "cannot reach" not in done.stderr or time.monotonic() > end:
                return done
            time.sleep(1.0)

    def token(self) -> str:
        return (self.data_dir / "token").read_text().strip()

    def address(self) -> str:
        return (self.data_dir / "address").read_text().strip()

    def service_pid(self, name: str) -> int | None:
        try:
            return int((self.data_dir / "run" / f"{name}.pid").read_text())
        except (OSError, ValueError):
            return None

    def processes(self, needle: str) -> list[int]:
        """Our own processes whose command line mentions ``needle`` and this data directory."""
        out = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if needle in cmd and str(self.data_dir) in cmd:
                out.append(int(proc.name))
        return out

    def algorithm_pids(self) -> list[int]:
        pids = []
        for state in (self.data_dir / "services").glob("*/*/state.json"):
            try:
                pids.append(int(json.loads(state.read_text())["main"]["pid"]))
            except (OSError, ValueError, KeyError, TypeError):
                pass
        return pids


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("faults"))
    up = s.sextant("up", "--detach", "--port", "0", timeout=180)
    assert up.returncode == 0, up.stdout + up.stderr
    yield s
    s.sextant("down", timeout=180)


def kill9(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False


def kill_target(stack: Stack, target: str, rng: random.Random, patience: float = 15.0) -> int | None:
    """kill -9 one process of ``target``; returns its pid, or None if none ran within ``patience``
    seconds. Trial wrappers live for a fraction of a second, so the moment may fall between two
    of them: keep looking (a short poll) rather than report "nothing to kill"."""
    deadline = time.monotonic() + patience
    while True:
        if target == "algorithm-service":
            pids = stack.algorithm_pids()
        elif target == "trial-wrapper":
            # The process that records a trial's exit: sextant-jobwrap here (StdOut metrics are
            # read after the job), the Python collector for kinds that collect while it runs.
            pids = stack.processes("sextant-jobwrap") + stack.processes("services.metrics_collector")
        else:
            pids = [stack.service_pid(target)]
        pids = sorted(p for p in pids if p)
        if pids:
            pid = rng.choice(pids)
            if kill9(pid):
                return pid
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)


@dataclass
class Run:
    name: str
    target: str
    delay: float
    killed: int | None = None
    killed_at: float | None = None
    result: dict = field(default_factory=dict)


def get_json(stack: Stack, *args: str) -> dict:
    done = stack.sextant_retry("get", *args, "-o", "json", deadline=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def items(doc) -> list[dict]:
    return doc.get("items", []) if isinstance(doc, dict) and "items" in doc else (doc if isinstance(doc, list)
                                                                                   else [doc])


def verify(stack: Stack, name: str) -> dict:
    """The invariants; returns counts for the report."""
    trials = items(get_json(stack, "trials", "-e", name))
    names = [t["metadata"]["name"] for t in trials]
    assignments = [tuple(sorted((a["name"], a["value"]) for a in t["spec"]["parameterAssignments"]))
                   for t in trials]
    assert len(trials) == MAX_TRIALS, f"{name}: {len(trials)} trials"
    assert len(set(names)) == MAX_TRIALS, f"{name}: duplicate trial names"
    assert len(set(assignments)) == MAX_TRIALS, f"{name}: duplicate assignments"
    channel = open_channel(stack.address(), token=stack.token())
    db = api_pb2_grpc.DBManagerStub(channel)
    succeeded = failed = 0
    try:
        for t in trials:
            conditions = {c["type"]: c["status"] for c in t["status"].get("conditions", [])}
            logs = db.GetObservationLog(api_pb2.GetObservationLogRequest(
                trial_name=t["metadata"]["name"], metric_name="score"), timeout=30).observation_log.metric_logs
            if conditions.get("Succeeded") == "True":
                succeeded += 1
                metrics = {m["name"]: m for m in t["status"]["observation"]["metrics"]}
                assert "score" in metrics, f"{t['metadata']['name']}: no observation"
                x = dict(a for a in assignments[names.index(t["metadata"]["name"])])["x"]
                assert sorted(m.metric.value for m in logs) == sorted(["0.01", "0.02", x]) or \
                    [float(m.metric.value) for m in logs] == [0.01, 0.02, float(x)], \
                    f"{t['metadata']['name']}: observation log {[m.metric.value for m in logs]}"
            else:
                failed += 1
                assert len(logs) <= LINES
    finally:
        channel.close()
    return {"trials": len(trials), "succeeded": succeeded, "failed": failed}


def run_round(stack: Stack, runs: list[Run]) -> None:
    rng = random.Random(f"{SEED}-{runs[0].name}")
    for run in runs:
        path = stack.data_dir / f"{run.name}.yaml"
        random_state = str(rng.randrange(1, 10**6)) if SEEDED_ALGORITHM else None
        path.write_text(experiment(run.name, random_state))
        applied = stack.sextant_retry("apply", "-f", str(path), deadline=120)
        assert applied.returncode == 0, applied.stderr
    start = time.monotonic()
    for run in sorted(runs, key=lambda r: r.delay):
        time.sleep(max(0.0, start + run.delay - time.monotonic()))
        run.killed = kill_target(stack, run.target, rng)
        run.killed_at = round(time.monotonic() - start, 2)
    for run in runs:
        waited = stack.sextant_retry("wait", "experiment", run.name, "--for=condition=Succeeded", "--timeout=6m")
        assert waited.returncode == 0, f"{run.name} ({run.target}): {waited.stdout}{waited.stderr}"
    for run in runs:
        run.result = verify(stack, run.name)
        with results_file(stack).open("a") as f:
            f.write(json.dumps({"run": run.name, "target": run.target, "delay": run.delay, "killed_pid": run.killed,
                                "killed_at": run.killed_at, **run.result}) + "\n")


def plan(count: int, prefix: str) -> list[Run]:
    rng = random.Random(SEED)
    return [Run(name=f"{prefix}-{i:02d}", target=TARGETS[i % len(TARGETS)], delay=round(rng.uniform(0.5, 4.0), 2))
            for i in range(count)]


def _run_all(stack: Stack, count: int, prefix: str) -> list[Run]:
    runs = plan(count, prefix)
    for i in range(0, len(runs), PARALLEL):
        run_round(stack, runs[i:i + PARALLEL])
    return runs


def test_kill9_each_piece_mid_experiment(stack):
    runs = _run_all(stack, RUNS, "fault")
    assert {r.target for r in runs} >= set(TARGETS[:min(RUNS, len(TARGETS))])
    # Every kill found a live process (otherwise the run proved nothing).
    assert all(r.killed for r in runs), [(r.name, r.target, r.killed_at) for r in runs if not r.killed]
    # The supervisor brought every service back.
    status = stack.sextant("status")
    assert status.returncode == 0, status.stdout + status.stderr


def _outage(stack: Stack, seconds: float, name: str) -> None:
    path = stack.data_dir / f"{name}.yaml"
    path.write_text(experiment(name))
    assert stack.sextant("apply", "-f", str(path)).returncode == 0
    time.sleep(3.0)
    pid = stack.service_pid("db-manager")
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)
    waited = stack.sextant_retry("wait", "experiment", name, "--for=condition=Succeeded", "--timeout=6m")
    assert waited.returncode == 0, waited.stdout + waited.stderr
    result = verify(stack, name)
    with results_file(stack).open("a") as f:
        f.write(json.dumps({"run": name, "target": "db-manager-outage", "outage_s": seconds, **result}) + "\n")


def test_db_manager_unreachable_short_outage_loses_no_metric(stack):
    _outage(stack, float(os.environ.get("SEXTANT_FAULT_OUTAGE", "8")), "outage-short")


@pytest.mark.faults
def test_db_manager_unreachable_30s_loses_no_metric(stack):
    _outage(stack, 30.0, "outage-30s")


def test_secrets_absent_from_logs_status_and_describe(stack):
    token = stack.token()
    outputs = [stack.sextant("status").stdout, stack.sextant("describe", "experiment", "fault-00").stdout,
               stack.sextant("get", "experiments", "-o", "yaml").stdout]
    for text in outputs:
        assert token not in text
    for log in (stack.data_dir / "logs").glob("*.log"):
        assert token not in log.read_text(errors="replace"), log.name
    # Without the token the stack refuses; the CLI (which reads <data_dir>/token) gets in.
    with grpc.insecure_channel(stack.address()) as channel:
        with pytest.raises(grpc.RpcError) as err:
            api_pb2_grpc.DBManagerStub(channel).GetObservationLog(
                api_pb2.GetObservationLogRequest(trial_name="x"), timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert stack.address().startswith("127.0.0.1:")


@pytest.mark.faults
def test_seeded_random_no_duplicates_after_db_manager_kill(stack, monkeypatch):
    """Known bug: with random_state set, the random algorithm's draws depend on (seed, number of
    trials in the request), so a request repeated before the trials exist hands out the same
    points again. Fails today; see RELIABILITY.md."""
    monkeypatch.setattr(sys.modules[__name__], "SEEDED_ALGORITHM", True)
    run_round(stack, [Run(name="seeded-00", target="db-manager", delay=4.0)])
