"""The long chaos run: many more experiments, kills, database outages and hostile requests than
the default suite's ``tests/e2e/test_chaos.py``, with the same checks (``tests/e2e/chaos.py``).

    .venv/bin/python scripts/testenv.py run -- .venv/bin/python bench/chaos.py \\
        [--experiments 8] [--trials 20] [--kills 12] [--outages 3] [--outage-seconds 10] \\
        [--backend postgresql|mariadb] [--seed N]

Prints one JSON line: the actions taken and when, the hostile requests' status codes, every
service's peak RSS, trial counts and the wall time. Exits non-zero if an invariant broke.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.chaos import RSS_BOUND_MB, ChaosPlan, run_chaos  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--experiments", type=int, default=8)
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--parallel", type=int, default=3)
    p.add_argument("--kills", type=int, default=12)
    p.add_argument("--outages", type=int, default=3)
    p.add_argument("--outage-seconds", type=float, default=10.0)
    p.add_argument("--hostile-rounds", type=int, default=6)
    p.add_argument("--spread-seconds", type=float, default=90.0, help="window the disruptions fall in")
    p.add_argument("--backend", choices=("postgresql", "mariadb"), default="postgresql")
    p.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(2), "big"))
    a = p.parse_args()
    plan = ChaosPlan(experiments=a.experiments, trials=a.trials, parallel=a.parallel, kills=a.kills,
                     outages=a.outages, outage_seconds=a.outage_seconds, hostile_rounds=a.hostile_rounds,
                     spread_seconds=a.spread_seconds, seed=a.seed, backend=a.backend, finish_timeout=900)
    with tempfile.TemporaryDirectory(prefix="sextant-chaos-") as workdir:
        report = run_chaos(plan, Path(workdir))
    print(json.dumps({"seed": a.seed, "backend": a.backend, "experiments": a.experiments, "trials": report.trials,
                      "succeeded": report.succeeded, "failed": report.failed, "wall_s": report.wall_s,
                      "rss_bound_mb": RSS_BOUND_MB,
                      "peak_rss_mb": {k: round(v) for k, v in sorted(report.peak_rss_mb.items())},
                      "hostile": report.hostile, "actions": report.actions, "load": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
