"""A random forest on scikit-learn's digits, scored for accuracy and for inference time.

    python examples/trainers/forest_latency.py --n-estimators 40 --max-depth 8

Prints ``accuracy=0.9533 inference_ms=3.412``: the accuracy on a held-out 25 % and the time to
classify that held-out set (the fastest of five runs, in milliseconds, one thread). More and
deeper trees are more accurate and slower: a multi-objective experiment finds the trade-off.
"""

from __future__ import annotations

import argparse
import time

from digits import load_digits, split


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-estimators", type=int, default=20)
    parser.add_argument("--max-depth", type=int, default=8)
    parser.add_argument("--max-features", type=float, default=0.3, help="fraction of features per split")
    parser.add_argument("--seed", type=int, default=0)
    args, _unknown = parser.parse_known_args(argv)

    from sklearn.ensemble import RandomForestClassifier  # most of the start-up: after parsing

    x, y = load_digits()
    x_train, x_val, y_train, y_val = split(x, y, 0.25, args.seed)
    model = RandomForestClassifier(n_estimators=args.n_estimators, max_depth=args.max_depth,
                                   max_features=args.max_features, random_state=args.seed, n_jobs=1)
    model.fit(x_train, y_train)
    accuracy = float((model.predict(x_val) == y_val).mean())
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        model.predict(x_val)
        timings.append(time.perf_counter() - start)
    print(f"accuracy={accuracy:.4f} inference_ms={1000 * min(timings):.3f}", flush=True)


if __name__ == "__main__":
    main()
