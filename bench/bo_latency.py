"""bayesianoptimization cost per suggestion, as wall time *and* CPU time.

The shared 2-core box usually runs other test suites, so wall time is inflated by waiting for a
core; the CPU time of the call (one thread: BLAS is limited to one thread inside the call) is
the figure to compare with the 1 s target. For each history size N (5 parameters: log double,
double, stepped double, int, categorical; synthetic objective):

* warm: the experiment's instance has seen N-1 trials; the request adds one new completed trial
  (the steady state of a sequential experiment);
* cold: a fresh instance given the N trials (a restarted service).

    .venv/bin/python bench/bo_latency.py --sizes 10,50,100,200 [--settings acq_func=gp_hedge]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.suggestion.algorithms.bayesian import BayesianOptimization  # noqa: E402
from sextant.conformance import builders as b  # noqa: E402


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def measure(n: int, settings: dict[str, str], repeat: int) -> list[float]:
    """Median [warm wall, warm CPU, cold wall, cold CPU] in ms."""
    exp = b.experiment(f"lat-{n}", "bayesianoptimization", b.mixed_space(), settings=settings)
    history = b.completed_history(exp, n + repeat, seed=n)
    algo = BayesianOptimization()
    algo.suggest(exp, history[:n - 1], 1)
    warm = [_timed(lambda k=k: algo.suggest(exp, history[:n + k], 1)) for k in range(repeat)]
    cold = [_timed(lambda: BayesianOptimization().suggest(exp, history[:n], 1)) for _ in range(repeat)]
    return [statistics.median(x[i] for x in rows) for rows in (warm, cold) for i in (0, 1)]


def katib_baseline(n: int) -> tuple[float, float]:
    """scikit-optimize configured as Katib's service does (GP, gp_hedge, acq_optimizer auto,
    log-uniform doubles where min > 0, default 10,000 points): a fresh Optimizer told the N
    trials, then one ask; (wall ms, CPU ms)."""
    import warnings

    from skopt import Optimizer
    from skopt.space import Categorical, Integer, Real

    exp = b.experiment(f"katib-{n}", "bayesianoptimization", b.mixed_space())
    dims, names = [], []
    for p in exp.spec.parameter_specs.parameters:
        fs, names = p.feasible_space, names + [p.name]
        if p.parameter_type == 4:  # CATEGORICAL
            dims.append(Categorical(list(fs.list)))
        elif p.parameter_type == 2:  # INT
            dims.append(Integer(int(fs.min), int(fs.max)))
        else:
            lo, hi = float(fs.min), float(fs.max)
            dims.append(Real(lo, hi, "log-uniform") if lo > 0 else Real(lo, hi))
    history = b.completed_history(exp, n, seed=n)

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt = Optimizer(dims, "GP", n_initial_points=10, acq_func="gp_hedge", acq_optimizer="auto",
                            random_state=1)
            xs = [[_value(d, a.value) for d, a in zip(dims, t.spec.parameter_assignments.assignments,
                                                       strict=True)] for t in history]
            opt.tell(xs, [float(t.status.observation.metrics[0].value) for t in history])
            opt.ask()

    return _timed(run)


def _value(dim, text):
    from skopt.space import Categorical, Integer

    if isinstance(dim, Categorical):
        return text
    return int(text) if isinstance(dim, Integer) else float(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,50,100,200")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--settings", default="", help="comma list name=value added to random_state=1")
    ap.add_argument("--katib-baseline", action="store_true",
                    help="also time scikit-optimize configured as Katib's service (refit from scratch)")
    args = ap.parse_args()
    settings = {"random_state": "1"}
    for item in filter(None, args.settings.split(",")):
        k, _, v = item.partition("=")
        settings[k] = v
    print(f"settings: {settings}")
    print("| completed trials | warm wall ms | warm CPU ms | cold wall ms | cold CPU ms |")
    print("|---:|---:|---:|---:|---:|")
    for n in (int(s) for s in args.sizes.split(",")):
        med = measure(n, settings, args.repeat)
        print(f"| {n} | {med[0]:.0f} | {med[1]:.0f} | {med[2]:.0f} | {med[3]:.0f} |", flush=True)
    if args.katib_baseline:
        print("\n| completed trials | Katib-configured skopt wall ms | CPU ms |\n|---:|---:|---:|")
        for n in (int(s) for s in args.sizes.split(",")):
            wall, cpu = katib_baseline(n)
            print(f"| {n} | {wall:.0f} | {cpu:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
