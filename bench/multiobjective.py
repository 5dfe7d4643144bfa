"""Multi-objective quality: hypervolume of the front found after N trials.

Sextant's ``nsga2``, ``mo-tpe`` and ``random`` algorithms (the Algorithm classes the suggestion
service serves, asked for one assignment per call with every earlier trial SUCCEEDED in the
request, exactly what they receive over the wire) side by side with optuna's NSGAIISampler and
multi-objective TPESampler run directly on an optuna study with the same settings and seeds.

    nice -n 10 .venv/bin/python bench/multiobjective.py --seeds 5 --budget 50,100,200

Problems (all minimised, x in [0, 1]^n): ZDT1 and ZDT2 (2 objectives, n = 10), DTLZ2 with 2
objectives (n = 6) and with 3 objectives (n = 7 and n = 12). Hypervolume is taken against a
reference point that bounds every objective value the problem can produce (printed with the
table). Reported: the gap to the true front's hypervolume (ideal - found, lower is better;
0 would be the exact front), median over seeds and min..max, at each budget.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import optuna  # noqa: E402
from optuna._hypervolume import compute_hypervolume  # noqa: E402
from optuna.samplers import BaseSampler, NSGAIISampler, TPESampler  # noqa: E402

from sextant.api import api_pb2  # noqa: E402
from sextant.conformance import builders as b  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)

# ---- problems ----


def zdt1(x: np.ndarray) -> list[float]:
    g = 1 + 9 * x[1:].mean()
    return [float(x[0]), float(g * (1 - math.sqrt(x[0] / g)))]


def zdt2(x: np.ndarray) -> list[float]:
    g = 1 + 9 * x[1:].mean()
    return [float(x[0]), float(g * (1 - (x[0] / g) ** 2))]


def dtlz2(m: int) -> Callable[[np.ndarray], list[float]]:
    def f(x: np.ndarray) -> list[float]:
        g = float(((x[m - 1:] - 0.5) ** 2).sum())
        out = []
        for i in range(m):
            v = 1 + g
            for xj in x[: m - 1 - i]:
                v *= math.cos(xj * math.pi / 2)
            if i > 0:
                v *= math.sin(x[m - 1 - i] * math.pi / 2)
            out.append(v)
        return out
    return f


@dataclass
class Problem:
    name: str
    dims: int
    fn: Callable[[np.ndarray], list[float]]
    reference: list[float]  # bounds every value the problem can produce
    dominated_by_front: float  # volume between the origin and the true Pareto front

    @property
    def ideal(self) -> float:
        """The hypervolume of the true Pareto front: what no finite set of points exceeds."""
        return math.prod(self.reference) - self.dominated_by_front


def _dtlz2_problem(m: int, n: int) -> Problem:
    bound = 1.1 * (1 + 0.25 * (n - m + 1))  # g <= (n - m + 1) / 4
    # the front is the unit sphere's positive part: a quarter disc (m = 2), an eighth ball (m = 3)
    return Problem(f"dtlz2-{m}obj-{n}d", n, dtlz2(m), [bound] * m, math.pi / 4 if m == 2 else math.pi / 6)


PROBLEMS = {p.name: p for p in [
    Problem("zdt1-10d", 10, zdt1, [1.1, 11.0], 1 / 3),  # front f2 = 1 - sqrt(f1)
    Problem("zdt2-10d", 10, zdt2, [1.1, 11.0], 2 / 3),  # front f2 = 1 - f1^2
    _dtlz2_problem(2, 6),
    _dtlz2_problem(3, 7),
    _dtlz2_problem(3, 12),
]}


def hypervolume(values: list[list[float]], reference: list[float]) -> float:
    if not values:
        return 0.0
    points = np.asarray(values, dtype=float)
    ref = np.asarray(reference, dtype=float)
    points = points[(points < ref).all(axis=1)]
    return float(compute_hypervolume(points, ref)) if len(points) else 0.0


# ---- runners: each returns the objective values of every trial, in order ----


def run_sextant(algorithm: str, problem: Problem, budget: int, seed: int, settings: dict[str, str]) -> list[list[float]]:
    from services.suggestion.algorithms import algorithm_classes

    cls = algorithm_classes.load(algorithm)
    assert cls is not None, algorithm
    m = len(problem.reference)
    names = [f"f{i}" for i in range(m)]
    extra = ", ".join(f"{n}=minimize" for n in names[1:])
    all_settings = {"random_state": str(seed), **settings}
    if algorithm != "random":
        all_settings["sextant.io/objectives"] = extra
    exp = b.experiment(f"bench-{problem.name}", algorithm,
                       [b.parameter(f"x{i}", "double", min="0", max="1") for i in range(problem.dims)],
                       metric=names[0], settings=all_settings)
    exp.spec.objective.additional_metric_names.extend(names[1:])
    instance = cls()
    trials: list[api_pb2.Trial] = []
    values: list[list[float]] = []
    for i in range(budget):
        (point,) = instance.suggest(exp, trials, 1).assignments
        x = np.array([float(point[f"x{j}"]) for j in range(problem.dims)])
        v = problem.fn(x)
        t = b.trial(f"t{i:04d}", point, metric=names[0], value=v[0])
        for name, value in zip(names[1:], v[1:], strict=True):
            t.status.observation.metrics.add(name=name, value=str(value))
        trials.append(t)
        values.append(v)
    return values


def run_optuna(sampler: BaseSampler, problem: Problem, budget: int) -> list[list[float]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(directions=["minimize"] * len(problem.reference), sampler=sampler)

        def objective(trial: optuna.Trial) -> list[float]:
            return problem.fn(np.array([trial.suggest_float(f"x{i}", 0, 1) for i in range(problem.dims)]))

        study.optimize(objective, n_trials=budget)
    return [list(t.values) for t in study.trials]


POPULATION = 20  # Sextant's nsga2 default, used for optuna's NSGA-II too


def methods() -> dict[str, Callable[[Problem, int, int], list[list[float]]]]:
    return {
        "random": lambda p, n, s: run_sextant("random", p, n, s, {}),
        "nsga2": lambda p, n, s: run_sextant("nsga2", p, n, s, {}),
        "mo-tpe": lambda p, n, s: run_sextant("mo-tpe", p, n, s, {}),
        "lib:optuna-nsga2": lambda p, n, s: run_optuna(NSGAIISampler(population_size=POPULATION, seed=s), p, n),
        "lib:optuna-motpe": lambda p, n, s: run_optuna(
            TPESampler(multivariate=True, constant_liar=True, seed=s), p, n),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--methods", default=",".join(methods()))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", default="50,100,200")
    args = parser.parse_args()
    budgets = sorted(int(x) for x in args.budget.split(","))
    chosen = {k: v for k, v in methods().items() if k in args.methods.split(",")}
    print(f"load average {os.getloadavg()[0]:.1f}; seeds 0..{args.seeds - 1}; budgets {budgets}", flush=True)
    for pname in args.problems.split(","):
        problem = PROBLEMS[pname]
        print(f"\n### {problem.name} (reference point {problem.reference}, ideal HV {problem.ideal:.4f})\n",
              flush=True)
        print("| method | " + " | ".join(f"HV gap @{n}" for n in budgets) + " | CPU s/run |")
        print("|---|" + "---|" * (len(budgets) + 1))
        for mname, run in chosen.items():
            hv: dict[int, list[float]] = {n: [] for n in budgets}
            cpu = []
            for seed in range(args.seeds):
                start = time.process_time()
                values = run(problem, budgets[-1], seed)
                cpu.append(time.process_time() - start)
                for n in budgets:
                    hv[n].append(problem.ideal - hypervolume(values[:n], problem.reference))
            cells = [f"{statistics.median(hv[n]):.3f} ({min(hv[n]):.2f}..{max(hv[n]):.2f})" for n in budgets]
            print(f"| {mname} | " + " | ".join(cells) + f" | {statistics.median(cpu):.1f} |", flush=True)


if __name__ == "__main__":
    main()
