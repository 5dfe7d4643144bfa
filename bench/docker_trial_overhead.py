"""What running a trial in a container costs, against the same trial as a local process.

Each runtime runs ``--trials`` trivial trials one after another (``python3 -c "print('acc=0.5')"``,
StdOut collector), each through the Runtime interface as the trial controller drives it:
``start_job``, ``job_status`` until it has ended (polled every 20 ms), then ``retire_job``. Reported
per trial: the median wall time from start to a final status, and the CPU time of this process
(the trial controller's share) and, for Docker, of the engine's daemons (dockerd, containerd
and the containerd shims, read from /proc), which a local trial does not use.

Reproduce (needs a Docker engine and the local base image, deploy/docker/build-base-images):
    .venv/bin/python bench/docker_trial_overhead.py --trials 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from sextant.runtime.base import JobPhase, JobSpec
from sextant.runtime.collector_settings import CollectorSettings
from sextant.runtime.docker_runtime import DockerRuntime
from sextant.runtime.local import LocalRuntime

IMAGE = "sextant-local/python:3.11-bookworm"
ENGINE_PROCESSES = ("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2")
TICKS = os.sysconf("SC_CLK_TCK")


def engine_cpu_seconds() -> float:
    """CPU seconds used so far by the engine's daemons (and by the shims alive now)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        if name in ENGINE_PROCESSES:
            fields = stat[stat.rindex(")") + 2:].split()
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])  # incl. children
    return total / TICKS


def own_cpu_seconds() -> float:
    return time.process_time()  # this process's user + system CPU, threads included


def spec(name: str, image: str) -> JobSpec:
    container = {"name": "main", "image": image, "command": ["python3", "-c", "print('acc=0.5')"]}
    return JobSpec(name=name, namespace="bench", primary_container_name="main",
                   run_spec={"apiVersion": "batch/v1", "kind": "Job",
                             "spec": {"template": {"spec": {"containers": [container]}}}},
                   collector=CollectorSettings(metrics=("acc",), kind="StdOut", report="spool"))


def run_trials(runtime: LocalRuntime, image: str, trials: int, tag: str) -> dict[str, float]:
    walls, cpus = [], []
    engine_before = engine_cpu_seconds()
    for i in range(trials):
        name = f"{tag}-{i}"
        started, cpu = time.monotonic(), own_cpu_seconds()
        runtime.start_job(spec(name, image))
        while runtime.job_status("bench", name).phase not in (JobPhase.SUCCEEDED, JobPhase.FAILED):
            time.sleep(0.02)
        status = runtime.job_status("bench", name)
        assert status.phase == JobPhase.SUCCEEDED, status
        runtime.retire_job("bench", name)
        walls.append(time.monotonic() - started)
        cpus.append(own_cpu_seconds() - cpu)
    return {"wall_ms": 1000 * statistics.median(walls), "controller_cpu_ms": 1000 * statistics.median(cpus),
            "engine_cpu_ms": 1000 * (engine_cpu_seconds() - engine_before) / trials}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as data:
        local = run_trials(LocalRuntime(Path(data) / "local"), IMAGE, args.trials, "local")
        docker = run_trials(DockerRuntime(Path(data) / "docker"), IMAGE, args.trials, "docker")
    print(f"load average after: {os.getloadavg()}")
    print("| runtime | trials | median wall ms per trial | controller CPU ms per trial | engine CPU ms per trial |")
    print("|---|---:|---:|---:|---:|")
    for label, result in (("local", local), ("docker", docker)):
        engine = f"{result['engine_cpu_ms']:.0f}" if label == "docker" else "-"
        print(f"| {label} | {args.trials} | {result['wall_ms']:.0f} | {result['controller_cpu_ms']:.1f} | {engine} |")


if __name__ == "__main__":
    main()
