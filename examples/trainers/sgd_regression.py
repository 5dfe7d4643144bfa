"""A small numpy trainer whose best learning rate changes while it trains (for pbt and asha).

    python examples/trainers/sgd_regression.py --lr 0.1 --epochs 5 [--checkpoint DIR] [--steps 100]

Mini-batch SGD on a fixed, ill-conditioned linear regression (32 features whose scales span
1.5 decades, noisy targets). A large learning rate makes fast progress at first but leaves
the weights bouncing around the optimum; a small one settles closer but needs many steps to
get there. So a decaying schedule beats every constant rate, which is what Population Based
Training can discover and a search over constant rates cannot.

Prints one line per epoch, ``epoch=<n> loss=<validation excess error>`` (the validation mean
squared error minus the noise variance; lower is better), for the StdOut collector.

``--checkpoint DIR``: training resumes from ``DIR/state.npz`` when it exists (weights, epochs
done, random state) and saves it after every epoch, so a pbt trial continues its parent's model
(epoch numbers continue too). ``--steps``: SGD steps per epoch (the cost of an epoch).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

FEATURES, TRAIN, VALIDATION, NOISE, BATCH = 32, 4096, 2048, 0.5, 8
DIVERGED = 1e6  # the loss reported once the weights blow up: the worst value, still a number


def dataset(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(TRAIN + VALIDATION, FEATURES)) * np.logspace(0, -1.5, FEATURES)
    y = x @ rng.normal(size=FEATURES) + NOISE * rng.normal(size=TRAIN + VALIDATION)
    return x[:TRAIN], y[:TRAIN], x[TRAIN:], y[TRAIN:]


def excess_error(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        value = float(np.mean((x @ w - y) ** 2)) - NOISE ** 2
    return min(value, DIVERGED) if math.isfinite(value) else DIVERGED


def load(checkpoint: Path | None, seed: int) -> tuple[np.ndarray, int, np.random.Generator]:
    rng = np.random.default_rng(seed)
    if checkpoint is not None and (checkpoint / "state.npz").exists():
        with np.load(checkpoint / "state.npz", allow_pickle=False) as state:
            rng.bit_generator.state = {"bit_generator": "PCG64", "state": {
                "state": int(str(state["rng_state"])), "inc": int(str(state["rng_inc"]))},
                "has_uint32": 0, "uinteger": 0}
            return state["w"].copy(), int(state["epoch"]), rng
    return np.zeros(FEATURES), 0, rng


def save(checkpoint: Path, w: np.ndarray, epoch: int, rng: np.random.Generator) -> None:
    checkpoint.mkdir(parents=True, exist_ok=True)
    inner = rng.bit_generator.state["state"]
    tmp = checkpoint / "state.tmp.npz"
    np.savez(tmp, w=w, epoch=epoch, rng_state=str(inner["state"]), rng_inc=str(inner["inc"]))
    tmp.replace(checkpoint / "state.npz")  # a trial stopped mid-write leaves the old state


def train(lr: float, epochs: int, steps: int = 100, checkpoint: Path | None = None, seed: int = 1,
          report: Callable[[int, float], None] | None = None) -> list[float]:
    """The validation loss after each epoch; resumes from and saves to ``checkpoint`` when
    given; ``report(epoch, loss)`` is called as each epoch ends."""
    x, y, x_val, y_val = dataset()
    w, done, rng = load(checkpoint, seed)
    losses = []
    for epoch in range(done + 1, done + epochs + 1):
        for _ in range(steps):
            batch = rng.integers(0, TRAIN, BATCH)
            xb = x[batch]
            with np.errstate(all="ignore"):
                w -= lr * (xb.T @ (xb @ w - y[batch])) / BATCH
        if checkpoint is not None:
            save(checkpoint, w, epoch, rng)
        losses.append(excess_error(w, x_val, y_val))
        if report is not None:
            report(epoch, losses[-1])
    return losses


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100, help="SGD steps per epoch")
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=1, help="seed of the mini-batch order")
    args, _unknown = parser.parse_known_args(argv)
    train(args.lr, args.epochs, args.steps, args.checkpoint, args.seed,
          report=lambda epoch, loss: print(f"epoch={epoch} loss={loss:.6f}", flush=True))


if __name__ == "__main__":
    main()
