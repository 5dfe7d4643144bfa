"""`make bench`: every benchmark once, each with the arguments its BENCHMARKS.md rows used.

The full runs take long on 2 cores (the quality benchmark alone is tens of minutes); pass
``--quick`` for a smoke pass with small budgets. Each benchmark prints its own table; copy the
figures into BENCHMARKS.md with the load average it reports.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

FULL = [
    ["bench/suggestion_latency.py"],
    ["bench/bo_latency.py"],
    ["bench/suggestion_quality.py", "--seeds", "10", "--budget", "50,100"],
    ["bench/controller_throughput.py"],
    ["bench/db_manager_bench.py", "--backend", "sqlite"],
    ["bench/db_manager_bench.py", "--backend", "mariadb"],
    ["bench/e2e_throughput.py", "--db", "sqlite"],
    ["bench/e2e_throughput.py", "--db", "mariadb"],
]
QUICK = [
    ["bench/suggestion_latency.py", "--sizes", "0,50", "--repeat", "3", "--no-process"],
    ["bench/bo_latency.py", "--sizes", "10,50", "--repeat", "1"],
    ["bench/suggestion_quality.py", "--seeds", "2", "--budget", "20", "--functions", "branin",
     "--algorithms", "random,tpe,sobol"],
    ["bench/controller_throughput.py", "--keys", "2000", "--repeats", "1", "--trials", "20"],
    ["bench/db_manager_bench.py", "--backend", "sqlite", "--rows", "20000", "--write-rows", "5000",
     "--queries", "50"],
    ["bench/e2e_throughput.py", "--db", "sqlite", "--trials", "40", "--parallel", "8"],
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small budgets: a smoke pass")
    args = parser.parse_args()
    failed = []
    for command in QUICK if args.quick else FULL:
        print(f"\n=== {' '.join(command)}", flush=True)
        if subprocess.run([sys.executable, *command]).returncode != 0:
            failed.append(command[0])
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
