"""Many experiments at once through the whole local stack (`sextant up`), with memory and CPU.

Starts a stack with `sextant up --detach` in a fresh data directory, submits ``--experiments``
experiments together (random search, ``--trials`` each, ``--parallel`` at a time), each trial a
Python process that sleeps ``--sleep`` seconds and prints one metric, and waits until every
experiment has ended. While it runs it samples, every ``--sample`` seconds, the resident memory
(RSS) of every process of the stack: the supervisor and its services, the algorithm services
the suggestion controller started, and, counted apart, the trial processes.

Reported (one JSON line):
* wall time from the first submission to the last experiment's end, trials/s;
* CPU seconds per trial of the stack's services (own CPU, from submission to the end) and of
  the trial processes (reaped children of the trial controller), and their sum;
* peak RSS of the stack (services + algorithm services) and of stack + trials, MB, with the
  peak per process kind;
* the load average before and after (``/proc/loadavg``): other work on the machine skews wall
  time, much less CPU per trial.

    .venv/bin/python bench/multi_experiment.py --experiments 10 --trials 50 --parallel 5 --sleep 0.45
    .venv/bin/python bench/multi_experiment.py --experiments 100 --trials 4 --parallel 2 --sleep 2
    .venv/bin/python bench/multi_experiment.py ... --db-url mysql://root@127.0.0.1:3306/sextant_bench

``SEXTANT_ALGORITHM_SERVICES=per-experiment`` in the environment measures Katib's one algorithm
service per experiment instead of the shared default. ``--profile DIR`` samples every service
with py-spy (``pip install py-spy``; collapsed stacks in DIR/<service>.txt, summarised by
``python bench/multi_experiment.py --summarise DIR/<service>.txt``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sextant.config import read_token  # noqa: E402
from sextant.katib import experiment_status  # noqa: E402
from sextant.resources.admission import admit_experiment  # noqa: E402
from sextant.store.client import GrpcResourceStore  # noqa: E402

NAMESPACE = "bench"
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def experiment(name: str, trials: int, parallel: int, sleep: float) -> dict:
    trainer = [sys.executable, "-c",
               f"import sys, time; time.sleep({sleep}); print('score=' + sys.argv[1])", "${trialParameters.x}"]
    return {
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "score"},
            "algorithm": {"algorithmName": "random"},
            "parallelTrialCount": parallel, "maxTrialCount": trials, "maxFailedTrialCount": trials,
            "parameters": [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}],
            "trialTemplate": {
                "primaryContainerName": "main",
                "trialParameters": [{"name": "x", "reference": "x"}],
                "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
                    "containers": [{"name": "main", "image": "none", "command": trainer}],
                    "restartPolicy": "Never"}}}},
            },
        },
    }


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2:].split()


def children_of() -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields:
                out[int(fields[1])].append(int(entry.name))
    return out


def descendants(pid: int, tree: dict[int, list[int]]) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(tree.get(p, []))
    return out


def rss_mb(pid: int) -> float:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 2**20
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu_s(pid: int) -> tuple[float, float]:
    """(own, reaped children) CPU seconds."""
    f = _stat(pid)
    if not f:
        return 0.0, 0.0
    return (int(f[11]) + int(f[12])) / TICK, (int(f[13]) + int(f[14])) / TICK


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def kind_of(cmd: str) -> str:
    for needle, kind in (("services.db_manager", "db-manager"), ("services.experiment_controller", "experiment-controller"),
                         ("services.suggestion.controller", "suggestion-controller"),
                         ("services.trial_controller", "trial-controller"), ("services.api_server", "api-server"),
                         ("services.suggestion.algorithms", "algorithm-service"),
                         ("services.suggestion.earlystopping", "early-stopping"), ("sextant.stack", "supervisor"),
                         ("sextant.cli", "supervisor")):
        if needle in cmd:
            return kind
    return "other"


class Sampler(threading.Thread):
    """Peak RSS of the stack's processes, by kind, and of the trial processes."""

    def __init__(self, supervisor: int, interval: float):
        super().__init__(daemon=True)
        self.supervisor, self.interval = supervisor, interval
        self.stop = threading.Event()
        self.peak_stack = self.peak_total = self.peak_trials = 0.0
        self.peak_by_kind: dict[str, float] = defaultdict(float)
        self.max_trial_processes = 0
        self.kinds: dict[int, str] = {}

    def sample(self) -> None:
        tree = children_of()
        trial_controller = next((p for p, k in self.kinds.items() if k == "trial-controller"), None)
        trial_pids = set()
        if trial_controller:
            for child in tree.get(trial_controller, []):
                trial_pids.update(descendants(child, tree))
        stack = trials = 0.0
        by_kind: dict[str, float] = defaultdict(float)
        for pid in descendants(self.supervisor, tree):
            rss = rss_mb(pid)
            if pid in trial_pids:
                trials += rss
                continue
            kind = self.kinds.get(pid) or self.kinds.setdefault(pid, kind_of(cmdline(pid)))
            by_kind[kind] += rss
            stack += rss
        self.peak_stack = max(self.peak_stack, stack)
        self.peak_trials = max(self.peak_trials, trials)
        self.peak_total = max(self.peak_total, stack + trials)
        self.max_trial_processes = max(self.max_trial_processes, len(trial_pids))
        for kind, value in by_kind.items():
            self.peak_by_kind[kind] = max(self.peak_by_kind[kind], value)

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            self.sample()


def stack_pids(data: Path) -> dict[str, int]:
    state = json.loads((data / "stack.json").read_text())
    pids = {name: svc["pid"] for name, svc in state["services"].items() if svc.get("pid")}
    pids["supervisor"] = int((data / "run" / "supervisor.pid").read_text().strip())
    return pids


def rpcs_per_trial(data: Path, trials: int) -> dict[str, float]:
    """DB manager requests per trial by method, from its Prometheus counters."""
    import urllib.request

    port = json.loads((data / "stack.json").read_text())["services"]["db-manager"].get("metrics_port")
    if not port:
        return {}
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        if line.startswith("sextant_grpc_requests_total{"):
            labels, value = line[len("sextant_grpc_requests_total{"):].split("} ")
            method = dict(part.split("=", 1) for part in labels.split(","))["method"].strip('"')
            out[method] += float(value)
    return {k: round(v / trials, 2) for k, v in sorted(out.items(), key=lambda kv: -kv[1]) if v / trials >= 0.01}


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def summarise(path: Path, top: int = 25) -> str:
    """Functions by inclusive and by self samples, from a py-spy collapsed-stack file."""
    inclusive: dict[str, int] = defaultdict(int)
    own: dict[str, int] = defaultdict(int)
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")[1:]  # the first frame is the thread
        for frame in set(frames):
            inclusive[frame] += n
        if frames:
            own[frames[-1]] += n
    out = [f"{path.name}: {total} samples", "inclusive:"]
    out += [f"  {n / total:6.1%}  {f}" for f, n in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]]
    out.append("self:")
    out += [f"  {n / total:6.1%}  {f}" for f, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]]
    return "\n".join(out)


def run(experiments: int, trials: int, parallel: int, sleep: float, sample: float, db_url: str | None,
        profile: Path | None = None) -> dict:
    data = Path(tempfile.mkdtemp(prefix="sextant-multi-")) / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("SEXTANT_STACK_MODULES", "SEXTANT_HOME", "SEXTANT_TOKEN")}
    env.setdefault("SEXTANT_LOG_LEVEL", "WARNING")
    cli = [sys.executable, "-m", "sextant.cli.main", "--data-dir", str(data)]
    up = [*cli, "up", "--detach", "--port", "0", *(["--db-url", db_url] if db_url else [])]
    started = subprocess.run(up, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    if started.returncode:
        raise SystemExit(f"sextant up failed: {started.stdout}{started.stderr}")
    store = GrpcResourceStore((data / "address").read_text().strip(), token=read_token(None, str(data / "token")),
                              retry_seconds=60)
    try:
        pids = stack_pids(data)
        sampler = Sampler(pids["supervisor"], sample)
        sampler.kinds.update({pid: name for name, pid in pids.items()})
        docs = [admit_experiment(experiment(f"exp-{i:03d}", trials, parallel, sleep)) for i in range(experiments)]
        time.sleep(1.0)
        load_before = loadavg()
        cpu_before = {pid: cpu_s(pid) for pid in pids.values()}
        spies = []
        if profile is not None:
            profile.mkdir(parents=True, exist_ok=True)
            for name, pid in pids.items():
                if name != "supervisor":
                    spies.append(subprocess.Popen(
                        [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid), "--rate", "100", "--gil",
                         "--format", "raw", "--nonblocking", "-o", str(profile / f"{name}.txt")],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(1.0)
        sampler.start()
        start = time.monotonic()
        for doc in docs:
            store.create(doc)
        pending = {d.metadata.name for d in docs}
        results = {}
        while pending:
            items, _ = store.list("Experiment", NAMESPACE)
            for e in items:
                if e.metadata.name in pending and experiment_status.is_finished(e):
                    pending.discard(e.metadata.name)
                    results[e.metadata.name] = e
            if time.monotonic() - start > 3600:
                raise TimeoutError(f"{len(pending)} experiments did not finish within an hour")
            time.sleep(0.2)
        wall = time.monotonic() - start
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            spy.wait(30)
        sampler.stop.set()
        sampler.join()
        sampler.sample()
        load_after = loadavg()
        total = experiments * trials
        cpu: dict[str, float] = {}
        for name, pid in pids.items():
            own, reaped = (now - before for now, before in zip(cpu_s(pid), cpu_before[pid], strict=True))
            cpu[name] = own
            if name == "trial-controller":
                cpu["trial-jobs"] = reaped
        tree = children_of()
        for pid in descendants(pids["suggestion-controller"], tree):
            if pid != pids["suggestion-controller"] and kind_of(cmdline(pid)) == "algorithm-service":
                cpu["algorithm-services"] = cpu.get("algorithm-services", 0.0) + cpu_s(pid)[0]
        services_cpu = sum(v for k, v in cpu.items() if k != "trial-jobs")
        succeeded = sum(e.status.trials_succeeded or 0 for e in results.values())
        return {
            "experiments": experiments, "trials_each": trials, "parallel": parallel, "sleep_s": sleep,
            "db": db_url.split(":", 1)[0] if db_url else "sqlite",
            "algorithm_services": os.environ.get("SEXTANT_ALGORITHM_SERVICES", "default"),
            "succeeded": succeeded, "trials": total, "wall_s": round(wall, 1), "trials_per_s": round(total / wall, 2),
            "cpu_s_per_trial": {"stack": round(services_cpu / total, 4), "trial_jobs": round(cpu.get("trial-jobs", 0) / total, 4),
                                "all": round((services_cpu + cpu.get("trial-jobs", 0)) / total, 4),
                                "by_process_ms": {k: round(v / total * 1000, 1) for k, v in sorted(cpu.items())}},
            "peak_rss_mb": {"stack": round(sampler.peak_stack), "trials": round(sampler.peak_trials),
                            "stack_and_trials": round(sampler.peak_total),
                            "by_kind": {k: round(v) for k, v in sorted(sampler.peak_by_kind.items())}},
            "max_trial_processes": sampler.max_trial_processes,
            "db_manager_rpcs_per_trial": rpcs_per_trial(data, total),
            "load": [load_before, load_after], "cpus": os.cpu_count(),
        }
    finally:
        store.close()
        subprocess.run([*cli, "down"], capture_output=True, cwd=ROOT, env=env, timeout=300)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--experiments", type=int, default=10)
    p.add_argument("--trials", type=int, default=50, help="trials per experiment")
    p.add_argument("--parallel", type=int, default=5, help="parallelTrialCount of each experiment")
    p.add_argument("--sleep", type=float, default=0.45, help="seconds each trial sleeps")
    p.add_argument("--sample", type=float, default=0.5, help="seconds between memory samples")
    p.add_argument("--db-url", help="database URL for the stack (default: SQLite in the data directory)")
    p.add_argument("--profile", type=Path, help="directory for py-spy profiles of every service")
    p.add_argument("--summarise", type=Path, help="print the top functions of a py-spy profile and exit")
    a = p.parse_args()
    if a.summarise:
        print(summarise(a.summarise))
        return
    print(json.dumps(run(a.experiments, a.trials, a.parallel, a.sleep, a.sample, a.db_url, a.profile)))


if __name__ == "__main__":
    main()
