"""The Kubernetes API server's costs, measured with real clients over HTTPS.

* ``table``: ``kubectl get trials`` of one experiment's 5,000 trials as a Table (wall time of the
  kubectl command, and of the bare HTTPS list request), the DB manager and API server running
  alone (no controllers, so nothing changes meanwhile);
* ``watch``: a watch event's delay after the store write (from the write's start to the line
  reaching the HTTP client), p50 and p99, with 1 watcher and with 50 concurrent watchers;
* ``create``: create→Running latency of an experiment applied with kubectl, on a whole local stack.

    .venv/bin/python bench/api_server_bench.py table --trials 5000
    .venv/bin/python bench/api_server_bench.py watch --writes 300 --watchers 1 50
    .venv/bin/python bench/api_server_bench.py create --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sextant.config import ensure_token  # noqa: E402
from sextant.kubeconfig import write_kubeconfig  # noqa: E402
from sextant.ports import free_port  # noqa: E402
from sextant.resources.models import Experiment, ObjectMeta, OwnerReference, Trial, TrialSpec  # noqa: E402
from sextant.store.client import GrpcResourceStore  # noqa: E402
from sextant.tls import ensure_tls  # noqa: E402

KUBECTL = Path(sys.executable).parent / "kubectl"
NAMESPACE = "bench"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _profiled() -> list[str]:
    """``SEXTANT_BENCH_PROFILE=FILE`` runs the API server under cProfile, writing FILE."""
    target = os.environ.get("SEXTANT_BENCH_PROFILE")
    return ["-m", "cProfile", "-o", target] if target else []


class Servers:
    """The DB manager and the API server as processes on a temporary data directory."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sextant-api-bench-"))
        self.token = ensure_token(self.dir)
        self.db_port, self.api_port = free_port(), free_port()
        self.tls = ensure_tls(self.dir / "tls")
        self.kubeconfig = write_kubeconfig(self.dir, f"https://127.0.0.1:{self.api_port}",
                                           self.tls.ca_cert.read_bytes(), self.token)
        common = ["--token-file", str(self.dir / "token"), "--data-dir", str(self.dir)]
        env = {**os.environ, "SEXTANT_DB_URL": f"sqlite:///{self.dir / 'sextant.db'}"}
        self.procs = [
            subprocess.Popen([sys.executable, "-m", "services.db_manager", *common, "--port", str(self.db_port)],
                             cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
            subprocess.Popen([sys.executable, *_profiled(), "-m", "services.api_server", *common, "--port", str(self.api_port),
                              "--db-manager", f"127.0.0.1:{self.db_port}"],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        ]
        self.store = GrpcResourceStore(f"127.0.0.1:{self.db_port}", token=self.token, retry_seconds=120)
        self.context = ssl.create_default_context(cafile=str(self.tls.ca_cert))
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"https://127.0.0.1:{self.api_port}/readyz", context=self.context,
                                            timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise TimeoutError("the API server did not become ready")
            time.sleep(0.2)

    def get(self, path: str, accept: str = "application/json") -> bytes:
        req = urllib.request.Request(f"https://127.0.0.1:{self.api_port}{path}",
                                     headers={"Authorization": f"Bearer {self.token}", "Accept": accept})
        with urllib.request.urlopen(req, context=self.context, timeout=300) as reply:
            return reply.read()

    def close(self) -> None:
        self.store.close()
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=30)


def experiment(name: str) -> Experiment:
    return Experiment.model_validate({
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"objective": {"type": "maximize", "objectiveMetricName": "score"},
                 "algorithm": {"algorithmName": "random"}, "maxTrialCount": 100000, "parallelTrialCount": 1,
                 "parameters": [{"name": "x", "parameterType": "double",
                                 "feasibleSpace": {"min": "0", "max": "1"}}],
                 "trialTemplate": {"primaryContainerName": "main",
                                   "trialParameters": [{"name": "x", "reference": "x"}],
                                   "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {
                                       "spec": {"containers": [{"name": "main", "image": "x",
                                                                "command": ["echo", "${trialParameters.x}"]}]}}}}}}})


def trial(owner: Experiment, index: int) -> Trial:
    return Trial(metadata=ObjectMeta(
        name=f"{owner.metadata.name}-{index:05d}", namespace=NAMESPACE,
        labels={"katib.kubeflow.org/experiment": owner.metadata.name},
        owner_references=[OwnerReference(kind="Experiment", name=owner.metadata.name, uid=owner.metadata.uid)]),
        spec=TrialSpec(parameter_assignments=[{"name": "x", "value": f"{index / 5000:.4f}"}]))


def bench_table(args: argparse.Namespace) -> dict:
    servers = Servers()
    try:
        owner = servers.store.create(experiment("big"))
        started = time.perf_counter()
        for i in range(args.trials):
            servers.store.create(trial(owner, i))
        load = time.perf_counter() - started
        env = {**os.environ, "KUBECONFIG": str(servers.kubeconfig), "HOME": str(servers.dir / "home")}
        walls, raw = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = subprocess.run([str(KUBECTL), "get", "trials", "-n", NAMESPACE, "-l",
                                  "katib.kubeflow.org/experiment=big"], capture_output=True, text=True, env=env,
                                 check=True)
            walls.append(time.perf_counter() - t0)
            rows = len(out.stdout.splitlines()) - 1
            t0 = time.perf_counter()
            servers.get(f"/apis/kubeflow.org/v1beta1/namespaces/{NAMESPACE}/trials",
                        accept="application/json;as=Table;v=v1;g=meta.k8s.io")
            raw.append(time.perf_counter() - t0)
        return {"trials": args.trials, "rows_printed": rows, "load_s": round(load, 1),
                "kubectl_get_s": {"median": round(statistics.median(walls), 3), "min": round(min(walls), 3)},
                "https_table_list_s": {"median": round(statistics.median(raw), 3), "min": round(min(raw), 3)}}
    finally:
        servers.close()


async def _watchers(servers: Servers, count: int, arrivals: list[dict[int, float]], opened: threading.Event,
                    stop: threading.Event) -> None:
    """``count`` watch streams in one event loop (aiohttp); an arrival is noted when the line
    is read, by the trial's index in its name (found without decoding the whole line)."""
    import asyncio

    import aiohttp

    version = servers.store.list("Trial", NAMESPACE)[1]
    url = (f"https://127.0.0.1:{servers.api_port}/apis/kubeflow.org/v1beta1/namespaces/{NAMESPACE}/trials"
           f"?watch=true&resourceVersion={version}")
    marker = b'"name": "watched-'

    async def one(session: aiohttp.ClientSession, seen: dict[int, float], ready: asyncio.Event) -> None:
        async with session.get(url, headers={"Authorization": f"Bearer {servers.token}"}, timeout=None) as reply:
            ready.set()
            async for line in reply.content:
                at = line.find(marker)
                if at >= 0:
                    end = line.index(b'"', at + len(marker))
                    seen[int(line[at + len(marker):end])] = time.perf_counter()

    connector = aiohttp.TCPConnector(ssl=servers.context, limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        readies = [asyncio.Event() for _ in range(count)]
        tasks = [asyncio.create_task(one(session, arrivals[i], readies[i])) for i in range(count)]
        await asyncio.gather(*(r.wait() for r in readies))
        opened.set()
        while not stop.is_set():
            await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()


def bench_watch(args: argparse.Namespace) -> dict:
    import asyncio

    servers = Servers()
    results = {}
    try:
        owner = servers.store.create(experiment("watched"))
        offset = 0
        for watchers in args.watchers:
            arrivals: list[dict[int, float]] = [{} for _ in range(watchers)]
            stop, opened = threading.Event(), threading.Event()
            thread = threading.Thread(target=asyncio.run, daemon=True,
                                      args=(_watchers(servers, watchers, arrivals, opened, stop),))
            thread.start()
            opened.wait(120)
            time.sleep(1.0)
            written: dict[int, float] = {}
            for i in range(offset, offset + args.writes):
                written[i] = time.perf_counter()
                servers.store.create(trial(owner, i))
                time.sleep(args.gap)
            deadline = time.time() + 60
            while time.time() < deadline and any(len(a) < args.writes for a in arrivals):
                time.sleep(0.1)
            stop.set()
            thread.join(10)
            delays = [(a[i] - written[i]) * 1000 for a in arrivals for i in written if i in a]
            results[f"{watchers}_watchers"] = {
                "events": len(delays), "expected": watchers * args.writes,
                "p50_ms": round(percentile(delays, 0.5), 2), "p99_ms": round(percentile(delays, 0.99), 2),
                "max_ms": round(max(delays), 2)}
            offset += args.writes
        return results
    finally:
        servers.close()


def bench_create(args: argparse.Namespace) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix="sextant-api-bench-stack-"))
    cli = [sys.executable, "-m", "sextant.cli.main", "--data-dir", str(data_dir)]
    subprocess.run([*cli, "up", "--detach", "--port", "0", "--timeout", "120"], check=True, cwd=ROOT,
                   capture_output=True)
    try:
        env = {**os.environ, "KUBECONFIG": str(data_dir / "kubeconfig"), "HOME": str(data_dir / "home")}
        token = (data_dir / "token").read_text().strip()
        store = GrpcResourceStore(json.loads((data_dir / "stack.json").read_text())["address"], token=token)
        latencies, applies = [], []
        for run in range(args.runs):
            name = f"latency-{run}"
            manifest = json.dumps({"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment",
                                   "metadata": {"name": name, "namespace": "default"},
                                   "spec": experiment(name).model_dump(mode="json", by_alias=True,
                                                                       exclude_none=True)["spec"]})
            t0 = time.perf_counter()
            subprocess.run([str(KUBECTL), "apply", "-f", "-"], input=manifest, text=True, env=env, check=True,
                           capture_output=True, cwd=ROOT)
            applies.append(time.perf_counter() - t0)
            while True:
                exp = store.get("Experiment", "default", name)
                if any(c.type == "Running" and c.status == "True" for c in exp.status.conditions):
                    break
                time.sleep(0.02)
            latencies.append(time.perf_counter() - t0)
            subprocess.run([str(KUBECTL), "delete", "experiment", name], env=env, capture_output=True, check=True)
        store.close()
        return {"runs": args.runs, "create_to_running_s": {"median": round(statistics.median(latencies), 3),
                                                           "min": round(min(latencies), 3),
                                                           "max": round(max(latencies), 3)},
                "kubectl_apply_s": {"median": round(statistics.median(applies), 3)}}
    finally:
        subprocess.run([*cli, "down"], cwd=ROOT, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    table = sub.add_parser("table")
    table.add_argument("--trials", type=int, default=5000)
    table.add_argument("--repeat", type=int, default=5)
    watch = sub.add_parser("watch")
    watch.add_argument("--writes", type=int, default=300)
    watch.add_argument("--gap", type=float, default=0.01, help="seconds between writes")
    watch.add_argument("--watchers", type=int, nargs="+", default=[1, 50])
    create = sub.add_parser("create")
    create.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    result = {"table": bench_table, "watch": bench_watch, "create": bench_create}[args.what](args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
