"""What running on Katib's CRDs costs in Kubernetes API requests: a local stack whose controllers
use the Kubernetes store (``SEXTANT_STORE=kubernetes``) on the stack's own API server runs one
experiment, and the API server's Prometheus counter ``sextant_api_requests_total`` gives the
requests by verb and resource. Counts, not times: they do not depend on the machine's load.

    .venv/bin/python -m bench.kube_store_requests [--trials 20] [--parallel 4]

Prints JSON: requests per verb/resource, the total per trial, and the wall time (with the load
average, for context only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sextant(data_dir: Path, *args: str, input: str | None = None, timeout: float = 300) -> str:
    env = {k: v for k, v in os.environ.items() if k != "SEXTANT_STACK_MODULES"}
    env["SEXTANT_STORE"] = "kubernetes"
    done = subprocess.run([sys.executable, "-m", "sextant.cli.main", "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, input=input, timeout=timeout, cwd=ROOT, env=env)
    if done.returncode != 0:
        raise SystemExit(f"sextant {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def api_requests(data_dir: Path) -> dict[str, float]:
    state = json.loads((data_dir / "stack.json").read_text())
    api = state["services"]["api-server"]
    text = urllib.request.urlopen(f"http://127.0.0.1:{api['metrics_port']}/metrics", timeout=10).read().decode()  # noqa: S310
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("sextant_api_requests_total{"):
            labels, value = line.rsplit(" ", 1)
            fields = dict(part.split("=", 1) for part in labels[len("sextant_api_requests_total{"):-1].split(","))
            key = f"{fields['verb'].strip(chr(34))} {fields['resource'].strip(chr(34)) or '-'}"
            counts[key] = counts.get(key, 0) + float(value)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=4)
    ns = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.experiments import small_experiment

    with tempfile.TemporaryDirectory(prefix="bench-kube-store-") as tmp:
        data_dir = Path(tmp)
        sextant(data_dir, "up", "--detach", "--port", "0", "--timeout", "120")
        try:
            before = api_requests(data_dir)
            started = time.monotonic()
            sextant(data_dir, "apply", "-f", "-", input=small_experiment(
                "bench", ["python", "examples/trainers/trivial.py", "--x=${trialParameters.x}"],
                max_trials=ns.trials, parallel=ns.parallel))
            sextant(data_dir, "wait", "experiment", "bench", "--timeout", "600")
            elapsed = time.monotonic() - started
            time.sleep(2)  # the last status writes
            after = api_requests(data_dir)
        finally:
            sextant(data_dir, "down")
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in sorted(after) if after.get(k, 0) != before.get(k, 0)}
    total = sum(delta.values())
    print(json.dumps({"trials": ns.trials, "parallel": ns.parallel, "requests": delta, "total": total,
                      "per_trial": round(total / ns.trials, 1), "wall_seconds": round(elapsed, 1),
                      "loadavg": os.getloadavg()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
