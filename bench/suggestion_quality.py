"""Suggestion quality: simple regret (best found - known optimum) after N trials.

Every Sextant algorithm is driven through its real gRPC service on loopback (one assignment per
GetSuggestions call unless ``--batch``, all earlier trials SUCCEEDED in the request), side by
side with hyperopt, scikit-optimize and optuna used directly as libraries with the same budget
and seeds. Reported: the median (and the spread) over seeds of the regret after each
checkpoint budget.

    .venv/bin/python bench/suggestion_quality.py --algorithms tpe,multivariate-tpe \\
        --functions hartmann6 --seeds 10 --budget 50,100

Functions: branin (f* = 0.397887), hartmann6 (f* = -3.32237), rosenbrock4 on [-2.048, 2.048]^4
(f* = 0) and ``mixed``: 2 doubles, an int and 2 categoricals whose optimum position depends on a
categorical choice (f* = 0, see ``mixed``).

Library baselines: ``lib:hyperopt-tpe`` (fmin with tpe.suggest), ``lib:optuna-tpe`` (TPESampler
defaults), ``lib:optuna-mvtpe`` (multivariate TPESampler), ``lib:skopt-gp`` (gp_minimize with
its defaults, as Katib's service would configure it apart from the log-uniform prior).

``--settings name=value,...`` adds algorithm settings to every Sextant algorithm's experiment
(``random_state`` is always the seed); ``n_startup_trials`` / ``n_ei_candidates`` among them are
passed to the ``lib:optuna-*`` samplers too. ``--seeds A:B`` runs seeds A..B-1 (a seed range
disjoint from the usual 0..N-1). With 20 or more seeds, a bootstrap 95 % interval of each
median is printed under the table: medians of 10 seeds move by a lot from one seed set to another.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from sextant.api import api_pb2  # noqa: E402
from sextant.conformance import builders as b  # noqa: E402

# ---- test functions ----

_H_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                 [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                        [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(p: dict) -> float:
    x = np.array([float(p[f"x{i}"]) for i in range(6)])
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(_H_A * (x - _H_P) ** 2, axis=1))))


def branin(p: dict) -> float:
    x1, x2 = float(p["x1"]), float(p["x2"])
    a, bb, c, r, s, t = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
    return a * (x2 - bb * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


def rosenbrock4(p: dict) -> float:
    x = [float(p[f"x{i}"]) for i in range(4)]
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(3))


_SHIFT = {"relu": 1.0, "tanh": -1.0, "sigmoid": 0.0}
_ACT_PENALTY = {"relu": 0.0, "tanh": 0.2, "sigmoid": 0.5}
_OPT_PENALTY = {"sgd": 0.4, "adam": 0.0, "rmsprop": 0.2, "adagrad": 0.6}


def mixed(p: dict) -> float:
    """Mixed space; the best ``x`` depends on the activation. f* = 0 at relu, x=1, y=-0.5, n=7, adam."""
    act, opt = p["act"], p["opt"]
    x, y, n = float(p["x"]), float(p["y"]), int(p["n"])
    return ((x - _SHIFT[act]) ** 2 + 0.5 * (y + 0.5) ** 2 + 0.05 * (n - 7) ** 2
            + _ACT_PENALTY[act] + _OPT_PENALTY[opt])


@dataclass(frozen=True)
class Problem:
    name: str
    fn: Callable[[dict], float]
    optimum: float
    params: list  # (name, kind, low, high, choices)


def _box(names, low, high):
    return [(n, "double", low, high, None) for n in names]


PROBLEMS = {
    "branin": Problem("branin", branin, 0.397887, [("x1", "double", -5.0, 10.0, None),
                                                   ("x2", "double", 0.0, 15.0, None)]),
    "hartmann6": Problem("hartmann6", hartmann6, -3.32237, _box([f"x{i}" for i in range(6)], 0.0, 1.0)),
    "rosenbrock4": Problem("rosenbrock4", rosenbrock4, 0.0, _box([f"x{i}" for i in range(4)], -2.048, 2.048)),
    "mixed": Problem("mixed", mixed, 0.0, [
        ("x", "double", -3.0, 3.0, None), ("y", "double", -3.0, 3.0, None), ("n", "int", 1, 12, None),
        ("act", "categorical", None, None, list(_SHIFT)), ("opt", "categorical", None, None, list(_OPT_PENALTY)),
    ]),
}

SEXTANT = ["random", "tpe", "multivariate-tpe", "bayesianoptimization", "cmaes", "sobol"]
LIBRARIES = ["lib:hyperopt-tpe", "lib:optuna-tpe", "lib:optuna-mvtpe", "lib:skopt-gp"]
SEEDED = {"random", "tpe", "multivariate-tpe", "bayesianoptimization", "cmaes"}


# ---- Sextant through gRPC ----


def _specs(problem: Problem) -> list[api_pb2.ParameterSpec]:
    out = []
    for name, kind, low, high, choices in problem.params:
        if kind == "categorical":
            out.append(b.parameter(name, "categorical", values=choices))
        elif kind == "int":
            out.append(b.parameter(name, "int", min=str(low), max=str(high)))
        else:
            out.append(b.parameter(name, "double", min=str(low), max=str(high)))
    return out


def run_sextant(stub, algorithm: str, problem: Problem, seed: int, budget: int, batch: int,
                extra: dict[str, str] | None = None) -> list[float]:
    settings = {**(extra or {}), **({"random_state": str(seed)} if algorithm in SEEDED else {})}
    exp = b.experiment(f"q-{algorithm}-{problem.name}-{seed}-{time.monotonic_ns()}", algorithm,
                       _specs(problem), settings=settings)
    trials: list[api_pb2.Trial] = []
    values: list[float] = []
    while len(values) < budget:
        count = min(batch, budget - len(values))
        reply = stub.GetSuggestions(api_pb2.GetSuggestionsRequest(
            experiment=exp, trials=trials, current_request_number=count,
            total_request_number=len(trials) + count), timeout=600)
        for pa in reply.parameter_assignments:
            point = {a.name: a.value for a in pa.assignments}
            value = problem.fn(point)
            values.append(value)
            trials.append(b.trial(f"t{len(trials)}", point, value=value))
    return values


@contextmanager
def _loopback_server():
    """Every registered algorithm behind one real gRPC server on 127.0.0.1:<free port>."""
    import grpc

    from services.suggestion.algorithms.servicer import HEALTH_NAMES, SuggestionServicer, add_to_server
    from sextant.api import api_pb2_grpc
    from sextant.config import ServerSettings
    from sextant.server import GrpcServer

    server = GrpcServer(ServerSettings(port=0, max_workers=4, grace_seconds=0), name="quality-bench",
                        health_names=HEALTH_NAMES)
    add_to_server(SuggestionServicer(), server)
    port = server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield api_pb2_grpc.SuggestionStub(channel)
    finally:
        channel.close()
        server.stop()


# ---- libraries directly ----


def run_library(lib: str, problem: Problem, seed: int, budget: int, extra: dict[str, str] | None = None) -> list[float]:
    values: list[float] = []
    if lib == "lib:hyperopt-tpe":
        from hyperopt import Trials, fmin, hp, tpe

        space = {}
        for name, kind, low, high, choices in problem.params:
            if kind == "categorical":
                space[name] = hp.choice(name, choices)
            elif kind == "int":
                space[name] = hp.uniformint(name, low, high)
            else:
                space[name] = hp.uniform(name, low, high)

        def objective(p):
            v = problem.fn(p)
            values.append(v)
            return v

        fmin(objective, space, algo=tpe.suggest, max_evals=budget, trials=Trials(),
             rstate=np.random.default_rng(seed), show_progressbar=False)
    elif lib.startswith("lib:optuna"):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        kwargs = {k: int(v) for k, v in (extra or {}).items() if k in ("n_startup_trials", "n_ei_candidates")}
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=lib.endswith("mvtpe"), **kwargs)
        study = optuna.create_study(sampler=sampler)

        def objective(trial):
            p = {}
            for name, kind, low, high, choices in problem.params:
                if kind == "categorical":
                    p[name] = trial.suggest_categorical(name, choices)
                elif kind == "int":
                    p[name] = trial.suggest_int(name, low, high)
                else:
                    p[name] = trial.suggest_float(name, low, high)
            v = problem.fn(p)
            values.append(v)
            return v

        study.optimize(objective, n_trials=budget)
    elif lib == "lib:skopt-gp":
        from skopt import gp_minimize
        from skopt.space import Categorical, Integer, Real

        dims = []
        for name, kind, low, high, choices in problem.params:
            dims.append(Categorical(choices, name=name) if kind == "categorical"
                        else Integer(low, high, name=name) if kind == "int" else Real(low, high, name=name))
        names = [p[0] for p in problem.params]

        def objective(x):
            v = problem.fn(dict(zip(names, x, strict=True)))
            values.append(v)
            return v

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gp_minimize(objective, dims, n_calls=budget, random_state=seed)
    else:
        raise SystemExit(f"unknown library baseline {lib}")
    return values


# ---- driver ----


def regret_curve(values: list[float], optimum: float, checkpoints: list[int]) -> dict[int, float]:
    return {c: min(values[:c]) - optimum for c in checkpoints if c <= len(values)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algorithms", default=",".join(SEXTANT + LIBRARIES),
                    help="comma list of Sextant algorithms and lib:* baselines")
    ap.add_argument("--functions", default=",".join(PROBLEMS))
    ap.add_argument("--seeds", default="10", help="a count N (seeds 0..N-1), a range A:B or a comma list")
    ap.add_argument("--budget", default="50,100", help="checkpoints; the largest is the trial budget")
    ap.add_argument("--batch", type=int, default=1, help="assignments per GetSuggestions call")
    ap.add_argument("--jsonl", default=None, help="append one JSON line per run to this file")
    ap.add_argument("--settings", default="", help="name=value,... added to the Sextant algorithms' settings")
    args = ap.parse_args(argv)

    if ":" in args.seeds:
        first, end = (int(s) for s in args.seeds.split(":"))
        seeds = list(range(first, end))
    elif "," in args.seeds:
        seeds = [int(s) for s in args.seeds.split(",")]
    else:
        seeds = list(range(int(args.seeds)))
    extra = dict(kv.split("=", 1) for kv in args.settings.split(",") if kv)
    checkpoints = sorted(int(c) for c in args.budget.split(","))
    budget = checkpoints[-1]
    algorithms = [a for a in args.algorithms.split(",") if a]
    functions = [f for f in args.functions.split(",") if f]
    for algo in algorithms:
        if algo in ("grid", "hyperband"):
            raise SystemExit(f"{algo} is not measured here: grid needs stepped doubles and hyperband a "
                             "resource parameter, so neither optimises these functions as given")

    rows = []
    with _loopback_server() as stub:
        for fname in functions:
            problem = PROBLEMS[fname]
            for algo in algorithms:
                curves, seconds = [], []
                for seed in seeds:
                    start = time.perf_counter()
                    values = (run_library(algo, problem, seed, budget, extra) if algo.startswith("lib:")
                              else run_sextant(stub, algo, problem, seed, budget, args.batch, extra))
                    seconds.append(time.perf_counter() - start)
                    curve = regret_curve(values, problem.optimum, checkpoints)
                    curves.append(curve)
                    if args.jsonl:
                        with open(args.jsonl, "a") as f:
                            f.write(json.dumps({"function": fname, "algorithm": algo, "seed": seed,
                                                "batch": args.batch, "settings": extra, "regret": curve,
                                                "seconds": seconds[-1]}) + "\n")
                    print(f"  {fname} {algo} seed={seed} " + " ".join(
                        f"@{c}={r:.4f}" for c, r in curve.items()) + f" ({seconds[-1]:.1f}s)", flush=True)
                med = {c: statistics.median(cv[c] for cv in curves) for c in checkpoints}
                q = {c: (min(cv[c] for cv in curves), max(cv[c] for cv in curves)) for c in checkpoints}
                rows.append((fname, algo, med, q, statistics.median(seconds), curves))
    print("\n| function | algorithm | " + " | ".join(f"regret@{c} (median)" for c in checkpoints)
          + " | min-max @" + str(budget) + " | s/run | seeds |")
    print("|---|---|" + "---:|" * len(checkpoints) + "---|---:|---:|")
    for fname, algo, med, q, secs, _ in rows:
        lo, hi = q[budget]
        print(f"| {fname} | {algo} | " + " | ".join(f"{med[c]:.4f}" for c in checkpoints)
              + f" | {lo:.4f}-{hi:.4f} | {secs:.1f} | {len(seeds)} |")
    if len(seeds) >= 20:
        print("\nbootstrap 95 % interval of the median (4,000 resamples of the seeds):")
        for fname, algo, _, _, _, curves in rows:
            print(f"  {fname} {algo}: " + ", ".join(
                "@{} {:.4f}-{:.4f}".format(c, *_median_interval([cv[c] for cv in curves])) for c in checkpoints))
    return 0


def _median_interval(values: list[float]) -> tuple[float, float]:
    data = np.asarray(values)
    medians = np.median(np.random.default_rng(0).choice(data, (4000, len(data))), axis=1)
    lo, hi = np.percentile(medians, [2.5, 97.5])
    return float(lo), float(hi)


if __name__ == "__main__":
    sys.exit(main())
