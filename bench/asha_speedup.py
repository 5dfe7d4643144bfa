"""ASHA early stopping against none: the same experiment, the same trial budget, on the local stack.

Runs examples/v1beta1/asha.yaml (random search over the learning rate of
examples/trainers/sgd_regression.py, 27 epochs per trial) through a real local stack with
``sextant run``, once as it is and once without ``earlyStopping``, for each of ``--seeds``
``random_state`` values (the order alternates, so a change of machine load hits both). Reported
per run: epochs trained (summed over the trials, read from their kept logs), the CPU time of
the trial jobs and of the whole stack (services and everything they started and reaped; both
independent of the machine's load, unlike the wall time), the wall time from ``sextant run`` to
Succeeded, early-stopped trials and the best loss.

    .venv/bin/python bench/asha_speedup.py --seeds 3 [--steps 5000] [--trials 24]

``--steps`` makes each epoch costlier than the example's, so that training rather than the
start-up of each trial process dominates a trial's time.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sextant.cli.context import Context  # noqa: E402
from sextant.resources.models import EXPERIMENT_LABEL, to_doc  # noqa: E402

EXAMPLE = ROOT / "examples" / "v1beta1" / "asha.yaml"


def sextant(data_dir: Path, *args: str, timeout: float = 900) -> str:
    result = subprocess.run([sys.executable, "-m", "sextant.cli.main", "--data-dir", str(data_dir), *args],
                            cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"sextant {' '.join(args)}: {result.stdout}{result.stderr}")
    return result.stdout


def stack_cpu(data_dir: Path) -> tuple[float, float]:
    """(all stack services, trial jobs) CPU seconds so far: each service's own time plus that of
    the children it reaped; the trial controller reaps the trial jobs (wrapper and trainer), the
    suggestion controller the algorithm and early-stopping services it stopped."""
    services = json.loads((data_dir / "stack.json").read_text())["services"]
    tick = os.sysconf("SC_CLK_TCK")
    total = trials = 0.0
    for name, service in services.items():
        try:
            raw = Path(f"/proc/{service['pid']}/stat").read_text()
        except (OSError, TypeError):
            continue
        fields = raw[raw.rfind(")") + 2:].split()
        own, children = (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick
        total += own + children
        if "trial" in name:
            trials += children
    return total, trials


def run_once(data_dir: Path, doc: dict, ctx: Context) -> dict:
    name = doc["metadata"]["name"]
    path = data_dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    cpu_before, jobs_before = stack_cpu(data_dir)
    started = time.monotonic()
    sextant(data_dir, "run", "-f", str(path), "--timeout", "15m")
    wall = time.monotonic() - started
    store = ctx.store()
    exp = to_doc(store.get("Experiment", "default", name))
    trials, _ = store.list("Trial", "default", {EXPERIMENT_LABEL: name})
    epochs = 0
    for trial in trials:
        log = data_dir / "logs" / "trials" / "default" / f"{trial.metadata.name}.log"
        for _ in range(100):  # a trial's log is kept once its job is retired, just after it ends
            if log.exists():
                break
            time.sleep(0.1)
        epochs += log.read_text().count("epoch=") if log.exists() else 0
    best = next(float(m["min"]) for m in exp["status"]["currentOptimalTrial"]["observation"]["metrics"]
                if m["name"] == "loss")
    store.delete("Experiment", "default", name)  # stops its services, so their CPU is counted
    time.sleep(3)
    cpu_after, jobs_after = stack_cpu(data_dir)
    return {"wall": wall, "cpu": cpu_after - cpu_before, "jobs_cpu": jobs_after - jobs_before, "epochs": epochs, "trials": len(trials), "best": best,
            "stopped": exp["status"].get("trialsEarlyStopped", 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=20)
    parser.add_argument("--trials", type=int, default=0, help="maxTrialCount instead of the example's")
    parser.add_argument("--steps", type=int, default=0,
                        help="SGD steps per epoch instead of the example's (a costlier epoch)")
    args = parser.parse_args()
    base = yaml.safe_load(EXAMPLE.read_text())
    rows = []
    with tempfile.TemporaryDirectory(prefix="sextant-asha-") as tmp:
        data_dir = Path(tmp)
        sextant(data_dir, "up", "--detach", "--port", "0", "--api-port", "0", "--timeout", "180")
        ctx = Context(data_dir=data_dir)
        try:
            for i, seed in enumerate(range(args.first_seed, args.first_seed + args.seeds)):
                order = ("asha", "none") if i % 2 == 0 else ("none", "asha")
                for mode in order:
                    doc = copy.deepcopy(base)
                    doc["metadata"]["name"] = f"asha-{mode}-{seed}"
                    doc["spec"]["algorithm"]["algorithmSettings"] = [{"name": "random_state", "value": str(seed)}]
                    if mode == "none":
                        del doc["spec"]["earlyStopping"]
                    if args.trials:
                        doc["spec"]["maxTrialCount"] = args.trials
                    if args.steps:
                        container = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"][
                            "containers"][0]
                        container["command"] = [f"--steps={args.steps}" if c.startswith("--steps=") else c
                                                for c in container["command"]]
                    rows.append({"seed": seed, "mode": mode, **run_once(data_dir, doc, ctx)})
                    print(rows[-1], flush=True)
        finally:
            ctx.close()
            sextant(data_dir, "down")
    print("| seed | early stopping | trials (early-stopped) | epochs trained | trial jobs CPU s | stack CPU s "
          "| wall s | best loss |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['seed']} | {r['mode']} | {r['trials']} ({r['stopped']}) | {r['epochs']} | {r['jobs_cpu']:.1f} | "
              f"{r['cpu']:.1f} | {r['wall']:.1f} | {r['best']:.4f} |")
    for key in ("epochs", "jobs_cpu", "cpu", "wall"):
        ratio = statistics.median(
            a[key] / n[key] for a in rows if a["mode"] == "asha"
            for n in rows if n["mode"] == "none" and n["seed"] == a["seed"])
        print(f"median asha / none {key}: {ratio:.2f}")
    better = sum(a["best"] <= n["best"] for a in rows if a["mode"] == "asha"
                 for n in rows if n["mode"] == "none" and n["seed"] == a["seed"])
    print(f"asha's best loss equal or better in {better} of {args.seeds} seeds")


if __name__ == "__main__":
    main()
