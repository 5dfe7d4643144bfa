"""A trainer that writes its metrics as JSON lines to a file (collector kind File, format JSON).

    python examples/trainers/json_metrics.py --lr 0.1 --out /tmp/metrics.json [--epochs 5]

Each line: ``{"epoch": N, "accuracy": "0.9", "loss": "0.3", "timestamp": <epoch seconds>}``
(values as strings, which Katib's JSON collector requires).
"""

from __future__ import annotations

import argparse
import json
import math
import time


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--out", required=True)
    args, _ = p.parse_known_args(argv)
    with open(args.out, "a") as f:
        for epoch in range(1, args.epochs + 1):
            loss = math.exp(-args.lr * epoch * 3)
            accuracy = 1 - loss / 2
            f.write(json.dumps({"epoch": epoch, "accuracy": f"{accuracy:.6f}", "loss": f"{loss:.6f}",
                                "timestamp": time.time()}) + "\n")
            f.flush()


if __name__ == "__main__":
    main()
