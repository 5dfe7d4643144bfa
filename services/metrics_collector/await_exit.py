"""``python -m services.metrics_collector.await_exit FILE``: waits for the trial's exit code in
FILE, then exits with it.

In a trial pod with the collector as a sidecar, the training container cannot be this
collector's child: its wrapper writes the exit code into the volume both share, and the sidecar
runs the collector around this waiter, so the collector reads the metrics while the training
runs and finishes (with the training's exit code) once it has ended.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m services.metrics_collector.await_exit EXIT_CODE_FILE", file=sys.stderr)
        return 2
    path = Path(args[0])
    while True:
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            time.sleep(0.5)
            continue
        try:
            return int(text)
        except ValueError:  # written but not renamed into place yet cannot happen; a bad value can
            print(f"{path}: not an exit code: {text[:50]!r}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
