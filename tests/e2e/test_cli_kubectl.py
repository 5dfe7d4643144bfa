"""kubectl's habits in the CLI against a real local stack: apply/delete -f DIR -R, -o name,
jsonpath and custom-columns, -A, get -w; trials run in the directory the experiment was applied
from; describe and run explain failed trials and name the command that prints their logs."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading

import pytest

from tests.e2e.local_stack import GROUP, cli_command, cli_env, local_stack_fixture  # noqa: F401 - the local_stack fixture
from tests.experiments import small_experiment

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(GROUP)]


def sextant(stack, *args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(cli_command(stack.data_dir, *args), capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=cli_env())


def test_directories_names_jsonpath_columns_and_all_namespaces(local_stack, tmp_path):
    nested = tmp_path / "manifests" / "more"
    nested.mkdir(parents=True)
    # reads a file that exists only where the experiment is applied from
    code = "print('score=' + open('value.txt').read().strip())  # ${trialParameters.x}"
    (tmp_path / "value.txt").write_text("0.25\n")
    (tmp_path / "manifests" / "a.yaml").write_text(small_experiment("kc-a", ["python", "-c", code], max_trials=1,
                                                                   parallel=1))
    (nested / "b.yml").write_text(small_experiment("kc-b", ["python", "-c", code], max_trials=1, parallel=1))
    (tmp_path / "manifests" / "notes.txt").write_text("not a manifest")
    try:
        flat = sextant(local_stack, "apply", "-f", "manifests", cwd=tmp_path)
        assert flat.returncode == 0, flat.stderr
        assert flat.stdout.splitlines() == ["experiment.kubeflow.org/kc-a created"]
        # the stack runs trials as local processes: the template's image is not used, and apply says so
        assert "Warning: experiment kc-a: its trials name the image local" in flat.stderr, flat.stderr
        deep = sextant(local_stack, "apply", "-f", "manifests", "-R", cwd=tmp_path)
        assert deep.stdout.splitlines() == ["experiment.kubeflow.org/kc-a unchanged",
                                            "experiment.kubeflow.org/kc-b created"], deep.stderr
        for name in ("kc-a", "kc-b"):
            waited = sextant(local_stack, "wait", "experiment", name, "--timeout=4m", cwd=tmp_path)
            assert waited.returncode == 0, waited.stdout + waited.stderr
        # talking to the server loads gRPC, but never the models (tests/unit/test_cli_imports.py has the rest)
        probe = "import sys\nfrom sextant.cli.main import main\nmain(sys.argv[1:])\nprint(sorted(sys.modules))"
        loaded = subprocess.run([sys.executable, "-c", probe, "--data-dir", str(local_stack.data_dir), "get",
                                 "experiments"], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                                env=cli_env()).stdout
        assert "'grpc'" in loaded and "'pydantic.main'" not in loaded and "'sextant.resources.models'" not in loaded
        names = sextant(local_stack, "get", "experiments", "-o", "name", cwd=tmp_path).stdout.splitlines()
        assert {"experiment.kubeflow.org/kc-a", "experiment.kubeflow.org/kc-b"} <= set(names)
        best = sextant(local_stack, "get", "experiment", "kc-a", "-o",
                       "jsonpath={.status.currentOptimalTrial.observation.metrics[0].latest}", cwd=tmp_path)
        assert best.stdout == "0.25", best.stderr  # the trial read value.txt from tmp_path
        columns = sextant(local_stack, "get", "trials", "-e", "kc-b", "-o",
                          "custom-columns=TRIAL:.metadata.name,SCORE:.status.observation.metrics[0].max",
                          cwd=tmp_path).stdout.splitlines()
        assert columns[0].split() == ["TRIAL", "SCORE"] and columns[1].split()[1] == "0.25"
        everywhere = sextant(local_stack, "get", "experiments", "-A", cwd=tmp_path).stdout.splitlines()
        assert everywhere[0].split()[:2] == ["NAMESPACE", "NAME"]
        assert any(line.split()[:2] == ["default", "kc-a"] for line in everywhere)
        deleted = sextant(local_stack, "delete", "-f", "manifests", "-R", cwd=tmp_path)
        assert deleted.returncode == 0, deleted.stderr
        assert [line.split(" (")[0] for line in deleted.stdout.splitlines()] == [
            'experiment.kubeflow.org "kc-a" deleted', 'experiment.kubeflow.org "kc-b" deleted']
        again = sextant(local_stack, "delete", "-f", "manifests/a.yaml", cwd=tmp_path)
        assert again.returncode == 1 and "NotFound" in again.stderr
    finally:
        sextant(local_stack, "delete", "experiment", "kc-a", "kc-b", cwd=tmp_path)


def test_get_watch_prints_changes_until_interrupted(local_stack, tmp_path):
    # a namespace of its own: the stack is shared, so only this experiment's rows appear
    watcher = subprocess.Popen(cli_command(local_stack.data_dir, "get", "experiments", "-w", "-n", "kc-watch"),
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=cli_env())
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in watcher.stdout], daemon=True).start()
    try:
        code = "print('score=${trialParameters.x}')"
        applied = subprocess.run(
            cli_command(local_stack.data_dir, "apply", "-n", "kc-watch", "-f", "-"), input=small_experiment(
                "kc-watch", ["python", "-c", code], max_trials=1, parallel=1), capture_output=True, text=True,
            timeout=300, cwd=tmp_path, env=cli_env())
        assert applied.returncode == 0, applied.stderr
        seen = []
        while not any(line.split()[:2] == ["kc-watch", "Succeeded"] for line in seen):
            seen.append(lines.get(timeout=240))  # one row per change
        # the header comes once, above the first row, whether that row came with the list or
        # (the list being empty when the watch started) with the first change
        assert seen[0].startswith("NAME ") and not any(line.startswith("NAME ") for line in seen[1:]), seen
    finally:
        watcher.terminate()
        watcher.wait(timeout=30)
        sextant(local_stack, "delete", "experiment", "kc-watch", "-n", "kc-watch", cwd=tmp_path)


def test_describe_and_run_explain_failed_trials(local_stack, tmp_path):
    path = tmp_path / "fails.yaml"
    code = "import sys; print('about to fail'); sys.exit(3)  # ${trialParameters.x}"
    path.write_text(small_experiment("kc-fails", ["python", "-c", code], max_trials=2, parallel=1, max_failed=0))
    try:
        ran = sextant(local_stack, "run", "-f", str(path), "--timeout", "4m", cwd=tmp_path)
        assert ran.returncode == 1, ran.stdout + ran.stderr
        assert "trial(s) failed" in ran.stdout and "whole log: sextant logs kc-fails-" in ran.stdout
        described = sextant(local_stack, "describe", "experiment", "kc-fails", cwd=tmp_path)
        assert described.returncode == 0, described.stderr
        out = described.stdout
        assert "REASON" in out and "MESSAGE" in out and "Failed trials:" in out
        trial = json.loads(sextant(local_stack, "get", "trials", "-e", "kc-fails", "-o", "json",
                                   cwd=tmp_path).stdout)["items"][0]["metadata"]["name"]
        assert f"whole log: sextant logs {trial}" in out
        logs = sextant(local_stack, "logs", trial, cwd=tmp_path)
        assert "about to fail" in logs.stdout
    finally:
        sextant(local_stack, "delete", "experiment", "kc-fails", cwd=tmp_path)
