"""GetSuggestions latency per algorithm and history size.

For every algorithm in the registry (``services/suggestion/algorithms/algorithm_classes.py``, so a newly
registered algorithm is measured without touching this file), 5 parameters (log double, double,
stepped double, int, categorical), histories of N completed trials, one assignment per request:

* server warm: median ms of the servicer handling the request (no transport) when the
  experiment's algorithm instance is cached and has seen these trials;
* server cold: median ms for a new experiment name with the same N trials, i.e. a fresh
  instance rebuilding from the request, as after a restart (imports already done);
* rpc warm: median ms of the whole gRPC round trip on loopback (client-side, includes
  serialising N trials);
* server warm cpu (``--cpu``): the same as server warm, in process CPU time, which a shared,
  loaded machine inflates much less than wall time;
* process: seconds from spawning ``python -m services.suggestion.algorithms --algorithm A`` to
  the first reply (N = 100), i.e. interpreter + imports + cold rebuild.

    .venv/bin/python bench/suggestion_latency.py [--sizes 0,10,50,100,200,500] [--repeat 15]
        [--algorithms tpe,multivariate-tpe] [--cpu] [--no-process]

The load average is printed first: on a shared machine, state it with the numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.suggestion.algorithms import algorithm_classes  # noqa: E402
from services.suggestion.algorithms.servicer import HEALTH_NAMES, SuggestionServicer, add_to_server  # noqa: E402
from sextant.api import api_pb2, api_pb2_grpc  # noqa: E402
from sextant.config import ServerSettings  # noqa: E402
from sextant.conformance import builders as b  # noqa: E402
from sextant.conformance.checks import PROFILES, Profile  # noqa: E402
from sextant.server import GrpcServer  # noqa: E402


class _Context:
    """Enough of grpc.ServicerContext for a direct call; abort raises."""

    def abort(self, code, details):
        raise RuntimeError(f"{code.name}: {details}")

    def is_active(self) -> bool:  # the servicer stops work for callers that went away
        return True

    def time_remaining(self) -> None:  # no deadline
        return None


def _experiment(algorithm: str, name: str) -> api_pb2.Experiment:
    profile = PROFILES.get(algorithm, Profile())
    params = b.mixed_space() if algorithm != "grid" else profile.params()
    return b.experiment(name, algorithm, params, settings={**profile.settings, "random_state": "1"}
                        if algorithm not in ("hyperband",) else dict(profile.settings),
                        parallel_trial_count=profile.parallel_trial_count)


def _request(exp, trials) -> api_pb2.GetSuggestionsRequest:
    return api_pb2.GetSuggestionsRequest(experiment=exp, trials=trials, current_request_number=1,
                                         total_request_number=len(trials) + 1)


def _median_ms(fn, repeat: int, clock=time.perf_counter) -> float:
    times = []
    for _ in range(repeat):
        start = clock()
        fn()
        times.append((clock() - start) * 1000)
    return statistics.median(times)


def _measure_one(servicer, ctx, stub, algorithm: str, n: int, repeat: int) -> tuple:
    exp = _experiment(algorithm, f"bench-{algorithm}-{n}")
    trials = b.completed_history(exp, n, seed=n)
    request = _request(exp, trials)
    servicer.GetSuggestions(request, ctx)  # build the instance and its state
    warm = _median_ms(lambda: servicer.GetSuggestions(request, ctx), repeat)
    warm_cpu = _median_ms(lambda: servicer.GetSuggestions(request, ctx), repeat, time.process_time)
    counter = iter(range(10**6))

    def cold():
        e = api_pb2.Experiment()
        e.CopyFrom(exp)
        e.name = f"{exp.name}-cold{next(counter)}"
        servicer.GetSuggestions(_request(e, trials), ctx)

    cold_ms = _median_ms(cold, max(3, repeat // 3))
    stub.GetSuggestions(request, timeout=120)
    rpc = _median_ms(lambda: stub.GetSuggestions(request, timeout=120), repeat)
    return (algorithm, n, warm, cold_ms, rpc, warm_cpu, "")


def measure(algorithm: str, sizes: list[int], repeat: int, stub) -> list[tuple]:
    servicer = SuggestionServicer()
    ctx = _Context()
    rows = []
    for n in sizes:
        try:
            rows.append(_measure_one(servicer, ctx, stub, algorithm, n, repeat))
        except Exception as exc:  # an algorithm that cannot run this history: say so, keep going
            rows.append((algorithm, n, None, None, None, None, str(exc)[:80]))
    return rows


def process_start(algorithm: str, n: int = 100) -> float | None:
    start = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "services.suggestion.algorithms", "--algorithm", algorithm,
                             "--port", "0"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        if not line.startswith("listening on"):
            return None
        channel = grpc.insecure_channel(line.split()[-1])
        exp = _experiment(algorithm, "bench-process")
        api_pb2_grpc.SuggestionStub(channel).GetSuggestions(
            _request(exp, b.completed_history(exp, n)), timeout=120, wait_for_ready=True)
        channel.close()
        return time.perf_counter() - start
    except grpc.RpcError:
        return None
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="0,10,50,100,200,500")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--algorithms", default=",".join(algorithm_classes.available()))
    parser.add_argument("--no-process", action="store_true", help="skip the fresh-process measurement")
    parser.add_argument("--cpu", action="store_true", help="add a server-warm column in process CPU time")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    server = GrpcServer(ServerSettings(port=0, grace_seconds=0), name="bench", health_names=HEALTH_NAMES)
    add_to_server(SuggestionServicer(), server)
    port = server.start()
    stub = api_pb2_grpc.SuggestionStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
    print("load average (1, 5, 15 min): " + ", ".join(f"{v:.1f}" for v in os.getloadavg())
          + f" on {os.cpu_count()} cpus\n")
    cpu_head, cpu_rule = (" server warm cpu ms |", "---:|") if args.cpu else ("", "")
    print(f"| algorithm | completed trials | server warm ms | server cold ms | rpc warm ms |{cpu_head} note |")
    print(f"|---|---:|---:|---:|---:|{cpu_rule}---|")
    for algorithm in args.algorithms.split(","):
        for algo, n, warm, cold, rpc, cpu, note in measure(algorithm, sizes, args.repeat, stub):
            fmt = lambda v: "—" if v is None else f"{v:.2f}"  # noqa: E731
            cpu_cell = f" {fmt(cpu)} |" if args.cpu else ""
            print(f"| {algo} | {n} | {fmt(warm)} | {fmt(cold)} | {fmt(rpc)} |{cpu_cell} {note} |", flush=True)
    print("\nload average (1, 5, 15 min) after: " + ", ".join(f"{v:.1f}" for v in os.getloadavg()))
    server.stop()
    if not args.no_process:
        print("\n| algorithm | fresh process to first reply (100 trials), s |\n|---|---:|")
        for algorithm in args.algorithms.split(","):
            secs = process_start(algorithm)
            print(f"| {algorithm} | {'—' if secs is None else f'{secs:.2f}'} |", flush=True)


if __name__ == "__main__":
    main()
