"""Suggestion quality: simple regret (best found - known optimum) after N trials.

Every Sextant algorithm is driven through its real gRPC service on loopback (one assignment per
GetSuggestions call unless ``--batch``, all earlier trials SUCCEEDED in the request), side by
side with hyperopt, scikit-optimize and optuna used directly as libraries with the same budget
and seeds. Reported: the median (and the spread) over seeds of the regret after each
checkpoint budget.

    .venv/bin/python bench/suggestion_quality.py --algorithms tpe,multivariate-tpe \\
        --functions hartmann6 --seeds 10 --budget 50,100

Functions: branin (f* = 0.397887), hartmann6 (f* = -3.32237), rosenbrock4 on [-2.048, 2.048]^4
(f* = 0), levy4/levy8 on [-10, 10]^d, ackley2/ackley6 on [-32.768, 32.768]^d (f* = 0),
``mixed``: 2 doubles, an int and 2 categoricals whose optimum position depends on a categorical
choice (f* = 0, see ``mixed``), ``mixedlog``: log-uniform double and int, an int and 2
categoricals (f* = 0), and ``svm``: the 5-fold CV error of an SVM on scikit-learn's bundled
breast-cancer data (a real tuning task; f* unknown, 0 used). ``--functions tpe-suite`` runs the
tpe study's ten problems.

Library baselines: ``lib:katib-tpe`` (hyperopt as Katib's tpe service drives it one trial per
call: n_startup_jobs=1, every int quniform), ``lib:hyperopt-tpe`` (fmin with tpe.suggest),
``lib:optuna-tpe`` (TPESampler defaults), ``lib:optuna-mvtpe`` (multivariate TPESampler), ``lib:skopt-gp`` (gp_minimize with
its defaults, as Katib's service would configure it apart from the log-uniform prior).

``--settings name=value,...`` adds algorithm settings to every Sextant algorithm's experiment
(``random_state`` is always the seed); ``n_startup_trials`` / ``n_ei_candidates`` among them are
passed to the ``lib:optuna-*`` samplers too. ``--seeds A:B`` runs seeds A..B-1 (a seed range
disjoint from the usual 0..N-1). With 20 or more seeds, a bootstrap 95 % interval of each
median is printed under the table: medians of 10 seeds move by a lot from one seed set to another.

``katib:ALGORITHM`` (with ``--katib-checkout PATH``, a Katib source tree) is Katib's own service
for ALGORITHM, driven through the same loop (bench/katib_reference.py serves it).

``--jsonl FILE`` records every run; ``--from-jsonl FILE`` prints the tables from recorded runs
instead of running (the same filters apply), and ``--against ALGO`` adds each algorithm's median
regret minus ALGO's with a bootstrap interval of that difference over paired seeds, so a cell
reads as a win, a loss or a tie within noise.
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
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
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


def levy(p: dict) -> float:
    """Levy on [-10, 10]^d (f* = 0 at x = 1): many local minima along a valley."""
    x = np.array([float(v) for k, v in sorted(p.items())])
    w = 1 + (x - 1) / 4
    body = np.sum((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(np.pi * w[:-1] + 1) ** 2))
    return float(np.sin(np.pi * w[0]) ** 2 + body + (w[-1] - 1) ** 2 * (1 + np.sin(2 * np.pi * w[-1]) ** 2))


def ackley(p: dict) -> float:
    """Ackley on [-32.768, 32.768]^d (f* = 0 at 0): a flat outer region around one deep funnel."""
    x = np.array([float(v) for v in p.values()])
    d = len(x)
    return float(-20 * np.exp(-0.2 * np.sqrt(np.sum(x**2) / d)) - np.exp(np.sum(np.cos(2 * np.pi * x)) / d)
                 + 20 + math.e)


def mixed_log(p: dict) -> float:
    """Mixed space with log-uniform parameters (a learning rate and a width), an int and lists.
    f* = 0 at lr=1e-3, width=128, layers=3, act=relu, opt=adam; the best lr depends on the
    optimiser (sgd wants 10x more), as in real training."""
    lr, width, layers = float(p["lr"]), float(p["width"]), int(p["layers"])
    best_lr = 1e-2 if p["opt"] == "sgd" else 1e-3
    return ((math.log10(lr) - math.log10(best_lr)) ** 2 + 0.5 * (math.log2(width) - 7) ** 2
            + 0.1 * (layers - 3) ** 2 + _ACT_PENALTY[p["act"]] + 0.5 * _OPT_PENALTY[p["opt"]])


_SVM_DATA: list = []


def svm_error(p: dict) -> float:
    """A real tuning task: 5-fold cross-validated error of an RBF/poly SVM (scaled features) on
    scikit-learn's bundled breast-cancer data set (569 samples). f* is not known: 0 is used, so
    the "regret" is the CV error itself (the best seen in any run is ~0.018)."""
    import warnings

    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if not _SVM_DATA:
        from sklearn.datasets import load_breast_cancer

        _SVM_DATA.extend(load_breast_cancer(return_X_y=True))
    x, y = _SVM_DATA
    model = make_pipeline(StandardScaler(), SVC(C=float(p["C"]), gamma=float(p["gamma"]), kernel=p["kernel"],
                                                degree=int(p["degree"])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(1 - cross_val_score(model, x, y, cv=5).mean())


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
    **{f"levy{d}": Problem(f"levy{d}", levy, 0.0, _box([f"x{i}" for i in range(d)], -10.0, 10.0)) for d in (4, 8)},
    **{f"ackley{d}": Problem(f"ackley{d}", ackley, 0.0, _box([f"x{i}" for i in range(d)], -32.768, 32.768))
       for d in (2, 6)},
    "mixedlog": Problem("mixedlog", mixed_log, 0.0, [
        ("lr", "logdouble", 1e-5, 1.0, None), ("width", "logint", 8, 1024, None), ("layers", "int", 1, 8, None),
        ("act", "categorical", None, None, list(_SHIFT)), ("opt", "categorical", None, None, list(_OPT_PENALTY)),
    ]),
    "svm": Problem("svm", svm_error, 0.0, [
        ("C", "logdouble", 1e-3, 1e3, None), ("gamma", "logdouble", 1e-5, 1.0, None),
        ("kernel", "categorical", None, None, ["rbf", "poly", "sigmoid"]), ("degree", "int", 2, 5, None),
    ]),
}
#: The tpe study's suite (BENCHMARKS.md "tpe: univariate TPE study").
TPE_SUITE = ["branin", "hartmann6", "rosenbrock4", "levy4", "levy8", "ackley2", "ackley6", "mixed", "mixedlog",
             "svm"]

SEXTANT = ["random", "tpe", "multivariate-tpe", "bayesianoptimization", "cmaes", "sobol"]
LIBRARIES = ["lib:katib-tpe", "lib:hyperopt-tpe", "lib:optuna-tpe", "lib:optuna-mvtpe", "lib:skopt-gp"]
SEEDED = {"random", "tpe", "multivariate-tpe", "bayesianoptimization", "cmaes"}


# ---- Sextant through gRPC ----


def _specs(problem: Problem) -> list[api_pb2.ParameterSpec]:
    out = []
    for name, kind, low, high, choices in problem.params:
        if kind == "categorical":
            out.append(b.parameter(name, "categorical", values=choices))
        elif kind == "int":
            out.append(b.parameter(name, "int", min=str(low), max=str(high)))
        elif kind == "logint":
            out.append(b.parameter(name, "int", min=str(low), max=str(high), distribution="logUniform"))
        elif kind == "logdouble":
            out.append(b.parameter(name, "double", min=str(low), max=str(high), distribution="logUniform"))
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
            trial = b.trial(f"t{len(trials)}", point, value=value)
            # as Katib's controller (and Sextant's) sends it: Katib's services read the objective
            # metric's name from each trial, and skip a trial without one
            trial.spec.objective.CopyFrom(exp.spec.objective)
            trials.append(trial)
    return values


@contextmanager
def _katib_server(checkout: str) -> Iterator[object]:
    """Katib's own services from a Katib checkout (bench/katib_reference.py, a process of its
    own), on 127.0.0.1: a Suggestion stub for the ``katib:*`` algorithms."""
    import subprocess

    import grpc

    from sextant.api import api_pb2_grpc

    child = subprocess.Popen([sys.executable, str(Path(__file__).with_name("katib_reference.py")),
                              "--checkout", checkout], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line.startswith("PORT "):
            raise SystemExit(f"Katib's services did not start from {checkout} (exit {child.wait()})")
        with grpc.insecure_channel(f"127.0.0.1:{int(line.split()[1])}") as channel:
            yield api_pb2_grpc.SuggestionStub(channel)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)


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
    if lib in ("lib:hyperopt-tpe", "lib:katib-tpe"):
        from functools import partial

        from hyperopt import Trials, fmin, hp, tpe

        katib = lib == "lib:katib-tpe"
        space = {}
        for name, kind, low, high, choices in problem.params:
            if kind == "categorical":
                space[name] = hp.choice(name, choices)
            elif kind in ("int", "logint") and katib:  # Katib: every INT has step 1 -> quniform
                space[name] = (hp.qloguniform(name, math.log(low), math.log(high), 1) if kind == "logint"
                               else hp.quniform(name, low, high, 1))
            elif kind in ("int", "logint"):
                space[name] = (hp.qloguniform(name, math.log(low), math.log(high), 1) if kind == "logint"
                               else hp.uniformint(name, low, high))
            elif kind == "logdouble":
                space[name] = hp.loguniform(name, math.log(low), math.log(high))
            else:
                space[name] = hp.uniform(name, low, high)

        def objective(p):
            v = problem.fn(p)
            values.append(v)
            return v

        # Katib's service, asked for one trial per call, passes n_startup_jobs = the number of
        # trials requested (1): its TPE models from the second trial on. Plain hyperopt waits 20.
        algo = partial(tpe.suggest, n_startup_jobs=1) if katib else tpe.suggest
        fmin(objective, space, algo=algo, max_evals=budget, trials=Trials(),
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
                elif kind in ("int", "logint"):
                    p[name] = trial.suggest_int(name, low, high, log=kind == "logint")
                else:
                    p[name] = trial.suggest_float(name, low, high, log=kind == "logdouble")
            v = problem.fn(p)
            values.append(v)
            return v

        study.optimize(objective, n_trials=budget)
    elif lib == "lib:skopt-gp":
        from skopt import gp_minimize
        from skopt.space import Categorical, Integer, Real

        dims = []
        for name, kind, low, high, choices in problem.params:
            prior = "log-uniform" if kind.startswith("log") else "uniform"
            dims.append(Categorical(choices, name=name) if kind == "categorical"
                        else Integer(low, high, prior=prior, name=name) if kind.endswith("int")
                        else Real(low, high, prior=prior, name=name))
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
    ap.add_argument("--katib-checkout", default=None,
                    help="a Katib source tree: katib:ALGORITHM then runs Katib's own service for ALGORITHM")
    ap.add_argument("--bo-fit-points", type=int, default=None,
                    help="bayesianoptimization fits its kernel on this many points at most (default: the "
                         "service's FIT_POINTS); a huge number fits on every point, as before the subset fit")
    ap.add_argument("--from-jsonl", default=None,
                    help="report the runs recorded in this file (by --jsonl) instead of running")
    ap.add_argument("--against", default=None,
                    help="also print each algorithm's median regret minus this one's, with bootstrap intervals")
    args = ap.parse_args(argv)

    if ":" in args.seeds:
        first, end = (int(s) for s in args.seeds.split(":"))
        seeds = list(range(first, end))
    elif "," in args.seeds:
        seeds = [int(s) for s in args.seeds.split(",")]
    else:
        seeds = list(range(int(args.seeds)))
    extra = dict(kv.split("=", 1) for kv in args.settings.split(",") if kv)
    if args.bo_fit_points:
        from services.suggestion.algorithms import bayesian

        bayesian.FIT_POINTS = args.bo_fit_points  # the loopback server runs in this process
    checkpoints = sorted(int(c) for c in args.budget.split(","))
    budget = checkpoints[-1]
    algorithms = [a for a in args.algorithms.split(",") if a]
    functions = [f for name in args.functions.split(",") if name
                 for f in (TPE_SUITE if name == "tpe-suite" else [name])]
    for algo in algorithms:
        if algo in ("grid", "hyperband"):
            raise SystemExit(f"{algo} is not measured here: grid needs stepped doubles and hyperband a "
                             "resource parameter, so neither optimises these functions as given")

    runs: dict[tuple[str, str], dict[int, dict[int, float]]] = {}  # (function, algorithm) -> seed -> curve
    if args.from_jsonl:
        wanted = set(seeds)
        for line in Path(args.from_jsonl).read_text().splitlines():
            run = json.loads(line)
            if run["function"] in functions and run["algorithm"] in algorithms and run["seed"] in wanted:
                curve = {int(c): r for c, r in run["regret"].items() if int(c) in checkpoints}
                if len(curve) == len(checkpoints):
                    runs.setdefault((run["function"], run["algorithm"]), {})[run["seed"]] = curve
    else:
        with ExitStack() as stack:
            stub = stack.enter_context(_loopback_server())
            katib = None
            if any(a.startswith("katib:") for a in algorithms):
                if not args.katib_checkout:
                    raise SystemExit("katib:* algorithms need --katib-checkout PATH (a Katib source tree)")
                katib = stack.enter_context(_katib_server(args.katib_checkout))
            for fname in functions:
                problem = PROBLEMS[fname]
                for algo in algorithms:
                    for seed in seeds:
                        start = time.perf_counter()
                        if algo.startswith("lib:"):
                            values = run_library(algo, problem, seed, budget, extra)
                        elif algo.startswith("katib:"):
                            values = run_sextant(katib, algo.removeprefix("katib:"), problem, seed, budget,
                                                 args.batch, extra)
                        else:
                            values = run_sextant(stub, algo, problem, seed, budget, args.batch, extra)
                        seconds = time.perf_counter() - start
                        curve = regret_curve(values, problem.optimum, checkpoints)
                        runs.setdefault((fname, algo), {})[seed] = curve
                        if args.jsonl:
                            with open(args.jsonl, "a") as f:
                                f.write(json.dumps({"function": fname, "algorithm": algo, "seed": seed,
                                                    "batch": args.batch, "settings": extra, "regret": curve,
                                                    "bo_fit_points": args.bo_fit_points,
                                                    "seconds": seconds}) + "\n")
                        print(f"  {fname} {algo} seed={seed} " + " ".join(
                            f"@{c}={r:.4f}" for c, r in curve.items()) + f" ({seconds:.1f}s)", flush=True)
    print_table(runs, checkpoints)
    if args.against:
        print_against(runs, checkpoints, args.against)
    return 0


def print_table(runs: dict[tuple[str, str], dict[int, dict[int, float]]], checkpoints: list[int]) -> None:
    """Median [Q1, Q3] per checkpoint; with 20 or more seeds, the bootstrap interval of each median."""
    budget = checkpoints[-1]
    print("\n| function | algorithm | " + " | ".join(f"regret@{c} median [Q1, Q3]" for c in checkpoints)
          + " | min-max @" + str(budget) + " | seeds |")
    print("|---|---|" + "---:|" * len(checkpoints) + "---|---:|")
    for (fname, algo), by_seed in runs.items():
        curves = list(by_seed.values())
        cell = {c: [cv[c] for cv in curves] for c in checkpoints}
        print(f"| {fname} | {algo} | " + " | ".join(
            "{} [{}, {}]".format(_num(statistics.median(cell[c])), *map(_num, np.percentile(cell[c], [25, 75])))
            for c in checkpoints) + f" | {_num(min(cell[budget]))}-{_num(max(cell[budget]))} | {len(curves)} |")
    if any(len(by_seed) >= 20 for by_seed in runs.values()):
        print("\nbootstrap 95 % interval of the median (4,000 resamples of the seeds):")
        for (fname, algo), by_seed in runs.items():
            print(f"  {fname} {algo}: " + ", ".join(
                "@{} {:.4f}-{:.4f}".format(c, *_median_interval([cv[c] for cv in by_seed.values()]))
                for c in checkpoints))


def print_against(runs: dict[tuple[str, str], dict[int, dict[int, float]]], checkpoints: list[int],
                  baseline: str) -> None:
    """Per function and checkpoint, each algorithm's median regret minus ``baseline``'s on the
    seeds both ran, with a bootstrap 95 % interval of that difference (the seeds resampled in
    pairs): an interval below 0 is a win the seeds support, one across 0 a tie within noise."""
    print(f"\nmedian regret minus {baseline}'s, [bootstrap 95 % interval] (paired seeds):")
    tally: dict[str, list[int]] = {}
    for (fname, algo), by_seed in runs.items():
        base = runs.get((fname, baseline))
        if algo == baseline or base is None:
            continue
        seeds = sorted(set(by_seed) & set(base))
        if not seeds:
            continue
        cells = []
        for c in checkpoints:
            mine, theirs = np.array([by_seed[s][c] for s in seeds]), np.array([base[s][c] for s in seeds])
            picks = np.random.default_rng(0).integers(0, len(seeds), (4000, len(seeds)))
            diffs = np.median(mine[picks], axis=1) - np.median(theirs[picks], axis=1)
            lo, hi = np.percentile(diffs, [2.5, 97.5])
            diff = float(np.median(mine) - np.median(theirs))
            counts = tally.setdefault(algo, [0, 0, 0, 0])  # cells, median <=, interval < 0, interval > 0
            counts[0] += 1
            counts[1] += diff <= 0
            counts[2] += hi < 0
            counts[3] += lo > 0
            cells.append(f"@{c} {_num(diff)} [{_num(lo)}, {_num(hi)}]")
        print(f"  {fname} {algo} ({len(seeds)} seeds): " + ", ".join(cells))
    for algo, (n, at_most, better, worse) in tally.items():
        print(f"  {algo}: median <= {baseline}'s in {at_most} of {n} cells; interval below 0 in {better}, "
              f"above 0 in {worse}")


def _num(v: float) -> str:
    """Three significant digits: regrets span 1e-5 (Branin) to 1e2 (Rosenbrock)."""
    return f"{v:.3g}"


def _median_interval(values: list[float]) -> tuple[float, float]:
    data = np.asarray(values)
    medians = np.median(np.random.default_rng(0).choice(data, (4000, len(data))), axis=1)
    lo, hi = np.percentile(medians, [2.5, 97.5])
    return float(lo), float(hi)


if __name__ == "__main__":
    sys.exit(main())
