"""Injection and traversal: user values are data, never code or paths.

* no shell anywhere in sextant/ or services/ (AST + text scan);
* a real trial whose parameter values are shell syntax runs, gets the values verbatim in its
  argv, and nothing the syntax asks for happens;
* job and algorithm-service names with ``..``, ``/`` or NUL are refused before any path is built;
* SQL is always bound: quotes, semicolons and comment markers in trial names, metric names,
  values, labels and annotations are stored and returned verbatim on every database.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from sextant.api import api_pb2, api_pb2_grpc
from sextant.resources.admission import admit_experiment
from sextant.runtime.base import JobPhase, JobSpec, ServiceSpec
from sextant.runtime.collector_settings import CollectorSettings
from sextant.runtime.local import LocalRuntime
from sextant.templates import render_run_spec
from tests.data.bad.generate import BASE
from tests.integration.bad_input_support import sqlite_db_manager

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*ROOT.joinpath("sextant").rglob("*.py"), *ROOT.joinpath("services").rglob("*.py")])
SOURCES = [p for p in SOURCES if "/api/" not in str(p)]
FORBIDDEN_CALLS = {("os", "system"), ("os", "popen"), ("os", "execl"), ("os", "execlp"), ("os", "spawnl"),
                   ("subprocess", "getoutput"), ("subprocess", "getstatusoutput"), ("pty", "spawn")}
# Running code is the point of these (and no user *value* reaches them): the SDK's tune() runs the
# user's own objective function, from the source file their own tune() call wrote.
# The trial-pod wrapper on Kubernetes is a fixed shell script (trial images need not hold Python):
# the training command reaches it as positional arguments, run as "$@" and never parsed.
# test_the_pod_wrapper_never_parses_the_command runs it with hostile values.
ALLOWED = {("sextant/tune_runner.py", "exec()"), ("sextant/runtime/kubernetes_sidecar.py", "sh -c")}
SHELL_ARGV = re.compile(r"""["'](?:/bin/)?(?:ba|z|da)?sh["']\s*,\s*["']-c["']""")


def test_sources_found():
    assert len(SOURCES) > 50


def test_no_shell_anywhere():
    problems = []
    for path in SOURCES:
        text = path.read_text()
        tree = ast.parse(text, filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            for kw in node.keywords:
                if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    problems.append(f"{path}:{node.lineno}: shell=")
            func = node.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and \
                    (func.value.id, func.attr) in FORBIDDEN_CALLS:
                problems.append(f"{path}:{node.lineno}: {func.value.id}.{func.attr}")
            if isinstance(func, ast.Name) and func.id in ("eval", "exec") and \
                    (str(path.relative_to(ROOT)), f"{func.id}()") not in ALLOWED:
                problems.append(f"{path}:{node.lineno}: {func.id}()")
        for lineno, line in enumerate(text.splitlines(), 1):
            if SHELL_ARGV.search(line) and (str(path.relative_to(ROOT)), "sh -c") not in ALLOWED:
                problems.append(f"{path}:{lineno}: sh -c")
    assert problems == []


def test_the_pod_wrapper_never_parses_the_command(tmp_path):
    """The sidecar mode's wrapper, run by a real sh with hostile values: each reaches the trainer
    as one argument, byte for byte, and nothing they spell is executed."""
    from sextant.runtime.kubernetes_sidecar import WRAPPER

    values = hostile_values(tmp_path)
    out = tmp_path / "out.txt"
    done = subprocess.run(["sh", "-c", WRAPPER, "sextant-trial", sys.executable, "-c", TRAINER, *values],
                          env={**os.environ, "SEXTANT_METRICS_FILE": str(out), "SEXTANT_EXIT_FILE": str(tmp_path / "exit")},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    argv_line = next(line for line in out.read_text().splitlines() if line.startswith("ARGV="))
    assert json.loads(argv_line[len("ARGV="):]) == values
    assert (tmp_path / "exit").read_text().strip() == "0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exit", "out.txt"]  # no marker was touched


# ---- a real trial with hostile values ----------------------------------------------------------------

TRAINER = ("import json, sys; print('ARGV=' + json.dumps(sys.argv[1:])); "
           "print('score=0.5')")


def hostile_values(marker_dir: Path) -> list[str]:
    return [
        f"$(touch {marker_dir}/dollar)",
        f"`touch {marker_dir}/backtick`",
        f"; touch {marker_dir}/semicolon",
        f"' && touch {marker_dir}/quote && '",
        f"\" | touch {marker_dir}/pipe",
        "../../etc/passwd",
        "${HOME}",
        "%s%n{{.Trial}}",
    ]


def hostile_experiment(values: list[str]):
    doc = copy.deepcopy(BASE)
    doc["metadata"]["name"] = "inject"
    doc["spec"]["parameters"][2]["feasibleSpace"]["list"] = values
    container = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["python3", "-c", TRAINER, "--lr=${trialParameters.learningRate}",
                            "--layers=${trialParameters.numLayers}", "--optimizer=${trialParameters.optimizer}",
                            "${trialParameters.optimizer}"]
    return admit_experiment(doc)


def wait_done(rt: LocalRuntime, name: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = rt.job_status("default", name)
        if status.phase in (JobPhase.SUCCEEDED, JobPhase.FAILED):
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {name} did not finish")


def test_hostile_parameter_values_are_inert(tmp_path):
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    values = hostile_values(marker_dir)
    experiment = hostile_experiment(values)
    with sqlite_db_manager(tmp_path) as dbm:
        rt = LocalRuntime(tmp_path / "data", db_manager_address=dbm.address, stop_grace=1)
        for i, value in enumerate(values):
            name = f"inject-{i}"
            run_spec = render_run_spec(experiment, name, {"lr": "0.02", "layers": "2", "optimizer": value})
            rt.start_job(JobSpec(name=name, namespace="default", run_spec=run_spec,
                                 primary_container_name="training-container", retain=True,
                                 collector=CollectorSettings(metrics=("score",), flush_interval=0.2)))
        for i, value in enumerate(values):
            status = wait_done(rt, f"inject-{i}")
            assert status.phase == JobPhase.SUCCEEDED, status
            output = Path(rt.job_log_path("default", f"inject-{i}")).read_text()
            argv_line = next(line for line in output.splitlines() if line.startswith("ARGV="))
            assert json.loads(argv_line[5:]) == ["--lr=0.02", "--layers=2", f"--optimizer={value}", value]
        stub = api_pb2_grpc.DBManagerStub(grpc.insecure_channel(dbm.address))
        logs = stub.GetObservationLog(api_pb2.GetObservationLogRequest(trial_name="inject-0"), timeout=10)
        assert [m.metric.value for m in logs.observation_log.metric_logs] == ["0.5"]
    assert sorted(p.name for p in marker_dir.iterdir()) == []
    # Nothing escaped the data directory either.
    assert not (tmp_path / "etc").exists()


def test_nul_byte_in_argv_fails_the_job_cleanly(tmp_path):
    """A value with a NUL cannot be an argv entry (execve forbids it): the job must end Failed
    with a message, not crash whoever started it or stay pending forever."""
    experiment = hostile_experiment(["ok", "a\x00b"])
    rt = LocalRuntime(tmp_path / "data", stop_grace=1)
    run_spec = render_run_spec(experiment, "nul-trial", {"lr": "0.02", "layers": "2", "optimizer": "a\x00b"})
    rt.start_job(JobSpec(name="nul-trial", namespace="default", run_spec=run_spec,
                         primary_container_name="training-container",
                         collector=CollectorSettings(metrics=("score",), flush_interval=0.2)))
    status = wait_done(rt, "nul-trial", timeout=30)
    assert status.phase == JobPhase.FAILED
    assert "null" in status.message.lower() or "nul" in status.message.lower(), status.message


# ---- names that would become paths ---------------------------------------------------------------------

BAD_NAMES = ["..", ".", "../x", "x/../../y", "a/b", "/etc", "a\x00b", "", "x..y", "UPPER", "a b", "-a"]


def _dirs_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


@pytest.mark.parametrize("bad", BAD_NAMES)
@pytest.mark.parametrize("where", ["name", "namespace"])
def test_runtime_refuses_path_like_names_before_touching_disk(tmp_path, bad, where):
    data = tmp_path / "data"
    data.mkdir()
    rt = LocalRuntime(data, stop_grace=1)
    ident = {"name": "ok-name", "namespace": "default"}
    ident[where] = bad
    calls = [
        lambda: rt.start_job(JobSpec(name=ident["name"], namespace=ident["namespace"],
                                     run_spec={"kind": "Job", "spec": {"template": {"spec": {"containers": [
                                         {"name": "c", "command": ["true"]}]}}}})),
        lambda: rt.job_status(ident["namespace"], ident["name"]),
        lambda: rt.stop_job(ident["namespace"], ident["name"]),
        lambda: rt.delete_job(ident["namespace"], ident["name"]),
        lambda: rt.job_log_path(ident["namespace"], ident["name"]),
        lambda: rt.ensure_service(ServiceSpec(name=ident["name"], namespace=ident["namespace"],
                                              algorithm="random", command=["true"])),
        lambda: rt.service_status(ident["namespace"], ident["name"]),
        lambda: rt.delete_service(ident["namespace"], ident["name"]),
    ]
    for i, attempt in enumerate(calls):
        with pytest.raises(ValueError, match=where):
            attempt()
        assert _dirs_under(data) <= {"jobs", "services"}, f"call {i} created {_dirs_under(data)}"
    assert {p.name for p in tmp_path.iterdir()} == {"data"}


# ---- SQL is bound ------------------------------------------------------------------------------------

SQLISH = ["x'; DROP TABLE observation_logs; --", "\"; DELETE FROM resources; --", "a' OR '1'='1",
          "back\\slash", "percent%_under", "emoji ✓ é"]


def test_observation_logs_store_sql_syntax_verbatim(db_manager):
    stub = db_manager.dbmanager_stub()
    for i, text in enumerate(SQLISH):
        trial = f"trial-{i}-{text}"
        logs = [api_pb2.MetricLog(time_stamp=f"2024-01-01T00:00:0{j}Z",
                                  metric=api_pb2.Metric(name=f"m{text}", value=f"{j};{text}")) for j in range(3)]
        stub.ReportObservationLog(api_pb2.ReportObservationLogRequest(
            trial_name=trial, observation_log=api_pb2.ObservationLog(metric_logs=logs)), timeout=30)
    for i, text in enumerate(SQLISH):
        got = stub.GetObservationLog(api_pb2.GetObservationLogRequest(trial_name=f"trial-{i}-{text}"), timeout=30)
        assert [(m.metric.name, m.metric.value) for m in got.observation_log.metric_logs] == \
            [(f"m{text}", f"{j};{text}") for j in range(3)]
        filtered = stub.GetObservationLog(api_pb2.GetObservationLogRequest(
            trial_name=f"trial-{i}-{text}", metric_name=f"m{text}"), timeout=30)
        assert len(filtered.observation_log.metric_logs) == 3
    # A LIKE-style wildcard in a name must not match other trials.
    none = stub.GetObservationLog(api_pb2.GetObservationLogRequest(trial_name="trial-%"), timeout=30)
    assert list(none.observation_log.metric_logs) == []


def test_resource_labels_and_annotations_store_sql_syntax_verbatim(db_manager):
    from sextant.resources.models import Experiment

    store = db_manager.store()
    doc = copy.deepcopy(BASE)
    doc["metadata"]["namespace"] = "default"
    doc["metadata"]["labels"] = {"team": "a' OR '1'='1"}
    doc["metadata"]["annotations"] = {f"note{i}": text for i, text in enumerate(SQLISH)}
    created = store.create(admit_experiment(doc))
    assert isinstance(created, Experiment)
    got = store.get("Experiment", "default", "bad-input")
    assert got.metadata.annotations == doc["metadata"]["annotations"]
    assert got.metadata.labels["team"] == "a' OR '1'='1"
    items, _ = store.list("Experiment", "default", {"team": "a' OR '1'='1"})
    assert [e.metadata.name for e in items] == ["bad-input"]
    items, _ = store.list("Experiment", "default", {"team": "x' OR '1'='1"})
    assert items == []
