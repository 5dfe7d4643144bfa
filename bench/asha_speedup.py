"""ASHA early stopping against none: the same experiment, the same trial budget, on the local stack.

Runs examples/v1beta1/asha.yaml (random search over the learning rate of
examples/trainers/sgd_regression.py, 27 epochs per trial) through a real local stack with
``sextant run``, once as it is and once without ``earlyStopping``, for each of ``--seeds``
``random_state`` values (the order alternates, so a change of machine load hits both). Reported
per run: wall time from ``sextant run`` to Succeeded, epochs trained (summed over the trials,
read from their kept logs; independent of the machine's load), early-stopped trials and the
best loss.

    .venv/bin/python bench/asha_speedup.py --seeds 3
"""

from __future__ import annotations

import argparse
import copy
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


def run_once(data_dir: Path, doc: dict, ctx: Context) -> dict:
    name = doc["metadata"]["name"]
    path = data_dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
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
    return {"wall": wall, "epochs": epochs, "trials": len(trials), "best": best,
            "stopped": exp["status"].get("trialsEarlyStopped", 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=20)
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
                    rows.append({"seed": seed, "mode": mode, **run_once(data_dir, doc, ctx)})
                    print(rows[-1], flush=True)
        finally:
            ctx.close()
            sextant(data_dir, "down")
    print("| seed | early stopping | trials (early-stopped) | epochs trained | wall s | best loss |")
    print("|---|---|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['seed']} | {r['mode']} | {r['trials']} ({r['stopped']}) | {r['epochs']} | {r['wall']:.1f} | "
              f"{r['best']:.4f} |")
    for key in ("epochs", "wall"):
        ratio = statistics.median(
            a[key] / n[key] for a in rows if a["mode"] == "asha"
            for n in rows if n["mode"] == "none" and n["seed"] == a["seed"])
        print(f"median asha / none {key}: {ratio:.2f}")
    better = sum(a["best"] <= n["best"] for a in rows if a["mode"] == "asha"
                 for n in rows if n["mode"] == "none" and n["seed"] == a["seed"])
    print(f"asha's best loss equal or better in {better} of {args.seeds} seeds")


if __name__ == "__main__":
    main()
