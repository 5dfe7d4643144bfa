"""A small real trainer: an MLP on scikit-learn's bundled digits data set (runs in seconds on a CPU).

    python examples/trainers/digits.py --lr 0.02 --num-layers 3 --optimizer sgd [--epochs 10]

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
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--optimizer", default="sgd", choices=("sgd", "adam", "ftrl"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=32, help="units per hidden layer")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args, _unknown = parser.parse_known_args(argv)  # tolerate extra flags from templates

    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.25, random_state=args.seed,
                                                      stratify=y)
    scaler = StandardScaler().fit(x_train)
    x_train, x_val = scaler.transform(x_train), scaler.transform(x_val)
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
