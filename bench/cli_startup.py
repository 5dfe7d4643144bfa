"""CLI start-up benchmark: the CPU time (user + system, from ``getrusage(RUSAGE_CHILDREN)``) of
each ``sextant`` command, run as a fresh process the way a user runs it.

    .venv/bin/python -m bench.cli_startup [--rounds 5] [--checkout /work/main]
    .venv/bin/python -m bench.cli_startup --imports "get experiments"   # the costliest imports

Set-up (not measured): a local stack in a temporary data directory (``sextant up --detach``,
any free ports) holding one finished experiment with two trials. ``run -f FILE`` runs against
that finished experiment (it reports the result); ``get -w`` is interrupted with SIGINT once it
has listed and opened its watch; ``delete`` names an experiment that is not there. Each command runs
``--rounds`` times; the median and the largest CPU time are printed per command, as JSON.
CPU time rather than wall time, because the machine is shared: another process's load makes
wall time wander, while the work a command does stays the same. ``--checkout DIR`` runs the
commands of another checkout (with its own ``.venv``) against the same stack, for a before/after.
``--imports CMD`` prints the 15 modules with the largest cumulative import time for one command
(``python -X importtime``), to find what to make lazy.

Before measuring, the checkout's ``sextant`` package is byte-compiled (``compileall``, into its
git-ignored ``__pycache__`` directories), as ``pip install`` does for an installed package:
otherwise, wherever ``PYTHONDONTWRITEBYTECODE`` is set, every command would recompile every
Sextant module it imports, which costs more CPU than the imports themselves.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

EXPERIMENT = """
apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {name: bench-cli}
spec:
  objective: {type: maximize, objectiveMetricName: score}
  algorithm: {algorithmName: random}
  maxTrialCount: 2
  parallelTrialCount: 2
  parameters:
    - {name: x, parameterType: double, feasibleSpace: {min: "0.1", max: "0.9"}}
  trialTemplate:
    primaryContainerName: main
    trialParameters: [{name: x, reference: x}]
    trialSpec:
      apiVersion: batch/v1
      kind: Job
      spec:
        template:
          spec:
            restartPolicy: Never
            containers:
              - name: main
                image: python
                command: [python, -c, "import sys; print('score=' + sys.argv[1])", "${trialParameters.x}"]
"""

COMMANDS = [
    "--help",
    "get --help",
    "up --help",
    "down --help",
    "ui --help",
    "validate -f {file}",
    "apply -f {file}",
    # The experiment exists and has finished: run loads and validates the file, finds the stack,
    # and prints the result (the path of a re-run; its live display needs a terminal).
    "run -f {file}",
    "get experiments",
    "get trials -o wide",
    "get experiment bench-cli -o yaml",
    "get experiments -o name",
    "describe experiment bench-cli",
    "wait experiment bench-cli --for=condition=Succeeded",
    # A name that is not there: the same client and call as a delete that succeeds, repeatable.
    "delete experiment bench-missing",
    "status",
    "kubeconfig",
    "logs no-such-trial",
]
# Commands that run until interrupted: measured up to a SIGINT sent once they printed their
# first line and had WATCH_SETTLE_SECONDS more to open their watch (idle time costs no CPU).
WATCHES = ["get experiments -w"]
WATCH_SETTLE_SECONDS = 1.0


def cpu_of(argv: list[str], env: dict[str, str], cwd: Path, *, interrupt: bool = False) -> tuple[float, int]:
    """CPU seconds of one child process (and its exit code); with ``interrupt``, it is stopped
    with SIGINT (as Ctrl-C would) after its first line of output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    if interrupt:
        with subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
            assert proc.stdout is not None
            proc.stdout.readline()
            time.sleep(WATCH_SETTLE_SECONDS)
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=60)
            code = proc.returncode
    else:
        code = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              check=False).returncode
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the checkout whose CLI is measured")
    parser.add_argument("--imports", metavar="CMD", help="print the costliest imports of one command")
    args = parser.parse_args()
    checkout = args.checkout.resolve()
    python = str(checkout / ".venv" / "bin" / "python")
    subprocess.run([python, "-m", "compileall", "-q", str(checkout / "sextant")], check=True,
                   stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory(prefix="sextant-bench-cli-") as tmp:
        home = Path(tmp) / "home"
        experiment = Path(tmp) / "experiment.yaml"
        experiment.write_text(EXPERIMENT)
        env = {**os.environ, "SEXTANT_HOME": str(home), "PYTHONPATH": str(checkout)}
        env.pop("SEXTANT_SERVER", None)
        ours = [sys.executable, "-m", "sextant.cli.main"]
        subprocess.run([*ours, "up", "--detach", "--port", "0", "--api-port", "0"], env={**env, "PYTHONPATH": str(ROOT)},
                       cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        try:
            subprocess.run([*ours, "apply", "-f", str(experiment)], env={**env, "PYTHONPATH": str(ROOT)}, cwd=tmp,
                           check=True, stdout=subprocess.DEVNULL)
            subprocess.run([*ours, "wait", "experiment", "bench-cli", "--timeout=5m"],
                           env={**env, "PYTHONPATH": str(ROOT)}, cwd=tmp, check=True, stdout=subprocess.DEVNULL)
            if args.imports:
                argv = [python, "-X", "importtime", "-m", "sextant.cli.main",
                        *shlex.split(args.imports.format(file=experiment))]
                err = subprocess.run(argv, env=env, cwd=tmp, capture_output=True, text=True, check=False).stderr
                rows = []
                for line in err.splitlines():
                    if line.startswith("import time:") and "|" in line:
                        _, cumulative, name = line.split("|")
                        if cumulative.strip().isdigit():
                            rows.append((int(cumulative), name.rstrip()))
                for cumulative, name in sorted(rows, reverse=True)[:15]:
                    print(f"{cumulative / 1000:8.1f} ms  {name}")
                return
            results = {}
            for command in COMMANDS + WATCHES:
                argv = [python, "-m", "sextant.cli.main", *shlex.split(command.format(file=experiment))]
                samples, codes = [], set()
                for _ in range(args.rounds):
                    seconds, code = cpu_of(argv, env, Path(tmp), interrupt=command in WATCHES)
                    samples.append(seconds)
                    codes.add(code)
                results[command.replace("{file}", "FILE")] = {
                    "cpu_median_s": round(statistics.median(samples), 3), "cpu_max_s": round(max(samples), 3),
                    "exit_codes": sorted(codes)}
            print(json.dumps({"checkout": str(checkout), "rounds": args.rounds,
                              "load_average": os.getloadavg(), "at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                              "commands": results}, indent=2))
        finally:
            subprocess.run([*ours, "down"], env={**env, "PYTHONPATH": str(ROOT)}, cwd=tmp, check=False,
                           stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
