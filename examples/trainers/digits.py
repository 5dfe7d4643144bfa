"""A small real trainer: an MLP on scikit-learn's bundled digits data set (runs in seconds on a CPU).

    python examples/trainers/digits.py --lr 0.02 --num-layers 3 --optimizer sgd [--epochs 3]

Prints one line per epoch, e.g. ``epoch=3 accuracy=0.9412 Validation-accuracy=0.9305``, which the
default StdOut collector picks up. ``accuracy`` is measured on the training split,
``Validation-accuracy`` on a held-out 25 %.

``--optimizer``: ``sgd`` and ``adam`` are scikit-learn's solvers; ``ftrl`` (an MXNet optimizer in
the original Katib example) has no scikit-learn equivalent and is mapped to ``sgd`` with
Nesterov momentum, so that the search space of the seed example still works. Both ``--lr 0.01``
and ``--lr=0.01`` spellings are accepted.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import warnings
from pathlib import Path

import numpy as np


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits (1797 8x8 images), read straight from its CSV: importing
    ``sklearn.datasets`` (and the model_selection/preprocessing helpers) would add about a
    fifth to the trainer's start-up, which dominates a trial this small."""
    spec = importlib.util.find_spec("sklearn")
    root = Path(next(iter(spec.submodule_search_locations)))  # type: ignore[union-attr]
    with gzip.open(root / "datasets" / "data" / "digits.csv.gz", "rt") as f:
        data = np.loadtxt(f, delimiter=",")
    return data[:, :-1], data[:, -1].astype(int)


def split(x: np.ndarray, y: np.ndarray, val_fraction: float, seed: int):
    """Stratified shuffle split: ``val_fraction`` of every class held out."""
    rng = np.random.default_rng(seed)
    val = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:round(val_fraction * np.sum(y == c))]
                          for c in np.unique(y)])
    train = np.setdiff1d(np.arange(len(y)), val)
    return x[train], x[val], y[train], y[val]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--optimizer", default="sgd", choices=("sgd", "adam", "ftrl"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=32, help="units per hidden layer")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--subsample", type=float, default=1.0,
                        help="fraction of the training split to train on (validation stays whole)")
    parser.add_argument("--seed", type=int, default=0)
    args, _unknown = parser.parse_known_args(argv)  # tolerate extra flags from templates

    # Imported here, after argument parsing: it is most of the trainer's CPU time.
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    x, y = load_digits()
    x_train, x_val, y_train, y_val = split(x, y, 0.25, args.seed)
    if args.subsample < 1.0:
        keep = np.random.default_rng(args.seed).permutation(len(y_train))[:max(10, int(args.subsample * len(y_train)))]
        x_train, y_train = x_train[keep], y_train[keep]
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std == 0] = 1.0
    x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
    solver = "adam" if args.optimizer == "adam" else "sgd"
    model = MLPClassifier(hidden_layer_sizes=(args.hidden,) * max(1, args.num_layers), solver=solver,
                          learning_rate_init=args.lr, batch_size=args.batch_size,
                          momentum=0.9, nesterovs_momentum=args.optimizer == "ftrl",
                          max_iter=1, warm_start=True, random_state=args.seed)
    classes = np.unique(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for epoch in range(1, args.epochs + 1):
            model.partial_fit(x_train, y_train, classes=classes)
            train_acc = model.score(x_train, y_train)
            val_acc = model.score(x_val, y_val)
            print(f"epoch={epoch} accuracy={train_acc:.4f} Validation-accuracy={val_acc:.4f}", flush=True)


if __name__ == "__main__":
    main()
