"""End-to-end throughput: many trivial trials through the whole local stack.

Starts the DB manager (SQLite or MariaDB), the experiment, suggestion and trial controllers as
separate processes, submits a v1beta1 experiment (random search, ``--parallel`` trials at a time,
``--trials`` in total) whose trial prints one metric (``--trainer echo``: ``/bin/echo score=<x>``;
``--trainer python``: examples/trainers/trivial.py), and
measures the wall time from submission to ``Succeeded``.

Reported:
* trials/s = trials / wall time;
* job time per trial = mean wall time of the trial's local job (collector wrapper + trainer), read
  from the job records (``retain: true`` keeps them);
* controller overhead per trial = wall × parallel / trials − job time: the time a trial slot is
  not running a job (waiting for suggestions, trial creation, status updates, detection of the
  job's end);
* CPU ms per trial of every process (the trial jobs = the trial controller's reaped children:
  collector wrapper + trainer) and the DB manager's requests per trial by method.

    .venv/bin/python bench/e2e_throughput.py --trials 500 --parallel 20 --db sqlite
    .venv/bin/python bench/e2e_throughput.py --trials 500 --parallel 20 --db mariadb
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sextant.config import mysql_driver  # noqa: E402
from sextant.katib import experiment_status  # noqa: E402
from sextant.resources.admission import admit_experiment  # noqa: E402
from sextant.store.client import GrpcResourceStore  # noqa: E402
from sextant.store.interface import Unavailable  # noqa: E402

TRAINERS = {
    # The cheapest honest trial: prints one metric (its value is the parameter) and exits.
    "echo": ["/bin/echo", "score=${trialParameters.x}"],
    # A Python trainer: one more interpreter start-up (~30 ms CPU) per trial.
    "python": ["python", "examples/trainers/trivial.py", "--x=${trialParameters.x}"],
}


def experiment(trials: int, parallel: int, trainer: str = "echo") -> dict:
    return {
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment",
        "metadata": {"name": "throughput", "namespace": "bench"},
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "score"},
            "algorithm": {"algorithmName": "random"},
            "parallelTrialCount": parallel, "maxTrialCount": trials, "maxFailedTrialCount": trials,
            "parameters": [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}],
            "trialTemplate": {
                "retain": True, "primaryContainerName": "main",
                "trialParameters": [{"name": "x", "reference": "x"}],
                "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
                    "containers": [{"name": "main", "image": "none",
                                    "command": TRAINERS[trainer]}],
                    "restartPolicy": "Never"}}}},
            },
        },
    }


def mariadb_url() -> tuple[str, callable]:
    import sqlalchemy as sa

    admin_url = os.environ.get("SEXTANT_TEST_MARIADB", f"{mysql_driver()}://root@127.0.0.1:3306/?charset=utf8mb4")
    name = f"sextant_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))

    def drop():
        with admin.connect() as c:
            c.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))

    return sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False), drop


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(own, reaped children) CPU seconds of a live process, from /proc/<pid>/stat."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0, 0.0
    f = raw[raw.rfind(")") + 2:].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(f[11]) + int(f[12])) / tick, (int(f[13]) + int(f[14])) / tick


def _database_server_pid() -> int | None:
    for name in ("mariadbd", "mysqld"):
        found = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout.split()
        if found:
            return int(found[0])
    return None


def rpcs_per_trial(metrics_port: int, trials: int) -> dict[str, float]:
    """DB manager requests per trial by method, from its Prometheus counters."""
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("sextant_grpc_requests_total{"):
            labels, value = line[len("sextant_grpc_requests_total{"):].split("} ")
            method = dict(part.split("=", 1) for part in labels.split(","))["method"].strip('"')
            out[method] = out.get(method, 0) + float(value)
    return {k: round(v / trials, 2) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


def rpc_latency_ms(metrics_port: int) -> dict[str, float]:
    """Mean server-side latency (ms) per DB manager method, from its Prometheus histogram."""
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for line in text.splitlines():
        for suffix, into in (("_sum{", sums), ("_count{", counts)):
            head = "sextant_grpc_request_seconds" + suffix
            if line.startswith(head):
                labels, value = line[len(head):].split("} ")
                method = dict(part.split("=", 1) for part in labels.split(","))["method"].strip('"')
                into[method] = into.get(method, 0) + float(value)
    return {m: round(sums[m] / counts[m] * 1000, 2) for m in sorted(counts, key=lambda m: -counts[m])
            if counts[m] and m != "Watch"}


def run(trials: int, parallel: int, db: str, workers: int, trainer: str = "echo",
        profile: Path | None = None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="sextant-bench-"))
    data = tmp / "data"
    drop = None
    if db == "mariadb":
        url, drop = mariadb_url()
    else:
        url = f"sqlite:///{tmp / 'sextant.db'}"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        metrics_port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEXTANT_")}
    env.update(SEXTANT_HOME=str(data), PYTHONPATH=str(ROOT), SEXTANT_LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"))
    argvs = [["services.db_manager", "--port", str(port), "--db-url", url,
              "--metrics-port", str(metrics_port)],
             ["services.experiment_controller", "--db-manager", address, "--workers", str(workers)],
             ["services.suggestion.controller", "--db-manager", address],
             ["services.trial_controller", "--db-manager", address, "--workers", str(workers)]]
    procs = []
    for argv in argvs:
        log = open(tmp / f"{argv[0]}.log", "wb")
        # --profile: each service under yappi (bench/profiled.py), profile saved on SIGTERM.
        wrapper = ["-m", "bench.profiled", str(profile / f"{argv[0]}.pstat")] if profile else ["-m"]
        procs.append(subprocess.Popen([sys.executable, *wrapper, *argv, "--data-dir", str(data)], cwd=ROOT,
                                      env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    store = GrpcResourceStore(address, retry_seconds=60)
    try:
        exp = admit_experiment(experiment(trials, parallel, trainer))
        deadline = time.monotonic() + 60
        while True:
            try:
                store.get("Experiment", "bench", "none-yet")
            except Unavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
                continue
            except Exception:
                pass
            break
        time.sleep(2)  # let the controllers' informers sync
        # CPU is counted from here: start-up (imports, connections) is not a per-trial cost.
        cpu_before = {p.pid: cpu_seconds(p.pid) for p in procs}
        server = _database_server_pid() if db == "mariadb" else None
        server_before = cpu_seconds(server)[0] if server else 0.0
        start = time.monotonic()
        store.create(exp)
        while True:
            e = store.get("Experiment", "bench", "throughput")
            if experiment_status.is_finished(e):
                break
            if time.monotonic() - start > 3600:
                raise TimeoutError("experiment did not finish within an hour")
            time.sleep(0.2)
        wall = time.monotonic() - start
        job_times = []
        for job_dir in (data / "jobs" / "bench").iterdir():
            try:
                began = json.loads((job_dir / "job.json").read_text())["start_time"]
                ended = json.loads((job_dir / "exit.json").read_text())["completion_time"]
                job_times.append(_seconds(ended) - _seconds(began))
            except (FileNotFoundError, KeyError):
                continue
        job = sum(job_times) / max(1, len(job_times))
        # CPU profile: each service's own CPU, and the trial controller's reaped children (the
        # trial jobs: collector wrapper + trainer), per trial.
        cpu = {}
        for argv, p in zip(argvs, procs, strict=True):
            own, children = (now - before for now, before in
                             zip(cpu_seconds(p.pid), cpu_before[p.pid], strict=True))
            cpu[argv[0].split(".")[-1]] = round(own / trials * 1000, 1)
            if argv[0] == "services.trial_controller":
                cpu["trial_jobs"] = round(children / trials * 1000, 1)
        if server:  # the database server shares the machine's cores
            cpu["mariadbd"] = round((cpu_seconds(server)[0] - server_before) / trials * 1000, 1)
        rpcs = rpcs_per_trial(metrics_port, trials)
        latency = rpc_latency_ms(metrics_port)
        for state in (data / "services").glob("*/*/state.json"):
            pid = json.loads(state.read_text()).get("main", {}).get("pid")
            if pid:
                cpu["algorithm_service"] = round(cpu_seconds(pid)[0] / trials * 1000, 1)
        return {"db": db, "trainer": trainer, "trials": trials, "parallel": parallel, "succeeded": e.status.trials_succeeded, "failed": e.status.trials_failed,
                "metrics_unavailable": e.status.trial_metrics_unavailable, "killed": e.status.trials_killed,
                "not_succeeded": (e.status.failed_trial_list + e.status.metrics_unavailable_trial_list)[:5],
                "wall_s": round(wall, 1), "trials_per_s": round(trials / wall, 2),
                "job_s": round(job, 2), "overhead_per_trial_s": round(wall * parallel / trials - job, 2),
                "cpu_ms_per_trial": cpu, "db_manager_rpcs_per_trial": rpcs, "db_manager_ms_per_rpc": latency, "cpus": os.cpu_count(), "load": os.getloadavg()[0]}
    finally:
        store.close()
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        if drop:
            drop()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--trials", type=int, default=500)
    p.add_argument("--parallel", type=int, default=20)
    p.add_argument("--db", choices=("sqlite", "mariadb"), default="sqlite")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--trainer", choices=sorted(TRAINERS), default="echo")
    p.add_argument("--profile", type=Path, help="directory for per-service yappi profiles (pstat)")
    a = p.parse_args()
    if a.profile:
        a.profile.mkdir(parents=True, exist_ok=True)
    print(json.dumps(run(a.trials, a.parallel, a.db, a.workers, a.trainer, a.profile)))


if __name__ == "__main__":
    main()
