"""The cheapest possible trial, for throughput benchmarks: prints one metric and exits.

    python examples/trainers/trivial.py --x 0.3 [--y 2]

Prints ``score=<value>`` where value = -(x - 0.5)^2 - (y - 1)^2 (maximum 0 at x=0.5, y=1).
"""

import sys


def main(argv: list[str]) -> None:
    values = {"x": 0.0, "y": 1.0}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--"):
            name, _, value = arg[2:].partition("=")
            if not value and i + 1 < len(argv):
                i += 1
                value = argv[i]
            values[name] = float(value)
        i += 1
    score = -(values["x"] - 0.5) ** 2 - (values["y"] - 1.0) ** 2
    print(f"score={score:.6f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
