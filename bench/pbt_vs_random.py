"""pbt against random search on a task with a learning-rate schedule (examples/trainers/sgd_regression.py).

Both algorithms run through the same driver, in-process (their ``suggest`` as the gRPC
servicer calls it, the trainer's ``train`` as a trial runs it), in waves of ``--population``
parallel trials, for ``--trials`` trials each:

* pbt (n_population = ``--population``, truncation_threshold ``--truncation``): every trial
  trains ``--epochs`` epochs, starting from its parent's checkpoint as the pbt service prepared
  it in its state directory, so a trial of generation g has trained (g + 1) x epochs in total.
* random search: every trial trains from scratch for as many epochs as pbt's last generation
  has in total (``trials / population * epochs``), at one constant learning rate; so random
  search gets ``trials / population`` times pbt's compute.

Reported per algorithm over ``--seeds`` seeds (``random_state`` of both algorithms): the best
(lowest) final validation loss of any trial, as median and quartiles; and the loss of the best
constant learning rate of a fine grid (what a perfect search over constant rates can reach).

    .venv/bin/python bench/pbt_vs_random.py --seeds 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples" / "trainers"))

from sgd_regression import train  # noqa: E402

from services.suggestion.algorithms.base import Algorithm  # noqa: E402
from services.suggestion.algorithms.pbt import PBT  # noqa: E402
from services.suggestion.algorithms.random_search import RandomSearch  # noqa: E402
from sextant.api import api_pb2  # noqa: E402
from sextant.conformance import builders as b  # noqa: E402

LR_MIN, LR_MAX = "0.001", "1.0"


def experiment(name: str, algorithm: str, settings: dict[str, str]) -> api_pb2.Experiment:
    lr = b.parameter("lr", "double", min=LR_MIN, max=LR_MAX)
    lr.feasible_space.distribution = api_pb2.LOG_UNIFORM
    return b.experiment(name, algorithm, [lr], settings=settings, metric="loss")


def run(algorithm: Algorithm, exp: api_pb2.Experiment, trials: int, wave: int, epochs: int,
        state: Path | None) -> float:
    """Best final loss of ``trials`` trials run ``wave`` at a time."""
    done: list[api_pb2.Trial] = []
    best = float("inf")
    while len(done) < trials:
        result = algorithm.suggest(exp, done, min(wave, trials - len(done)))
        for i, point in enumerate(result.assignments):
            name = result.trial_names[i] if result.trial_names else f"{exp.name}-{len(done)}"
            checkpoint = state / exp.name / name if state is not None else None
            loss = train(float(point["lr"]), epochs, checkpoint=checkpoint)[-1]
            best = min(best, loss)
            trial = b.trial(name, point, metric="loss", value=loss)
            if result.labels:
                trial.spec.labels.update(result.labels[i])
            done.append(trial)
    return best


def best_constant_rate(epochs: int) -> tuple[float, float]:
    rates = np.geomspace(float(LR_MIN), float(LR_MAX), 61)
    losses = [train(float(lr), epochs)[-1] for lr in rates]
    k = int(np.argmin(losses))
    return float(rates[k]), losses[k]


def quartiles(values: list[float]) -> str:
    q1, q2, q3 = np.quantile(values, (0.25, 0.5, 0.75))
    return f"{q2:.4f} [{q1:.4f}, {q3:.4f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--trials", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per pbt trial")
    parser.add_argument("--truncation", default="0.25")
    args = parser.parse_args()
    generations = args.trials // args.population
    full = generations * args.epochs
    pbt_best, random_best = [], []
    started = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SEXTANT_STATE_DIR"] = tmp
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            settings = {"suggestion_trial_dir": "/var/log/katib/checkpoints/", "random_state": str(seed),
                        "n_population": str(args.population), "truncation_threshold": args.truncation}
            pbt_best.append(run(PBT(), experiment(f"pbt-{seed}", "pbt", settings), args.trials,
                                args.population, args.epochs, Path(tmp)))
            random_best.append(run(RandomSearch(), experiment(f"random-{seed}", "random",
                                                              {"random_state": str(seed)}),
                                   args.trials, args.population, full, None))
    rate, oracle = best_constant_rate(full)
    print(f"{args.trials} trials, population {args.population}, {generations} generations x {args.epochs} "
          f"epochs (random search: {full} epochs per trial), seeds {args.first_seed}..."
          f"{args.first_seed + args.seeds - 1}")
    print("| algorithm | best final loss, median [q1, q3] | seeds where pbt is better |")
    print("|---|---|---|")
    wins = sum(p < r for p, r in zip(pbt_best, random_best, strict=True))
    print(f"| pbt | {quartiles(pbt_best)} | {wins} of {args.seeds} |")
    print(f"| random | {quartiles(random_best)} | |")
    print(f"| best constant rate (grid of 61, lr={rate:.3g}) | {oracle:.4f} | |")
    print(f"median ratio random / pbt: {statistics.median(r / p for p, r in zip(pbt_best, random_best, strict=True)):.2f}; "
          f"CPU {time.process_time() - started:.1f} s")


if __name__ == "__main__":
    main()
