"""A trainer that reports its own metrics with ``sextant.report_metrics`` (collector kind Push).

    python examples/trainers/push_quadratic.py --x 0.3 --y 1.2 [--steps 3]

Each step reports ``score`` (maximum 0 at x=0.5, y=1, approached as the steps go on) and
``loss``. The trial name and the DB manager address come from the environment the runtime sets
(``KATIB_TRIAL_NAME``, ``SEXTANT_DB_MANAGER``), as Katib's ``report_metrics`` does.
"""

from __future__ import annotations

import argparse

from sextant.report import report_metrics


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--x", type=float, required=True)
    p.add_argument("--y", type=float, required=True)
    p.add_argument("--steps", type=int, default=3)
    args = p.parse_args()
    distance = (args.x - 0.5) ** 2 + (args.y - 1.0) ** 2
    for step in range(1, args.steps + 1):
        score = -distance * (1 + 1 / step)
        report_metrics({"score": score, "loss": distance / step})
        print(f"step {step}: reported score={score:.6f}", flush=True)


if __name__ == "__main__":
    main()
