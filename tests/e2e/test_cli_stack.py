"""`sextant up` / `status` / `down` and crash-restart of the real stack: the DB manager (SQLite in
the data directory) and the three controllers, each a process under the supervisor.

One stack serves the first tests of this module (in file order: status, "already running", then
the kill -9 test, which leaves restarts behind); the `down` test starts a stack of its own.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.e2e.kube_stack import trivial_experiment
from tests.e2e.local_stack import cli_command, cli_env, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("sextant-stack")]

SERVICES = ("db-manager", "experiment-controller", "suggestion-controller", "trial-controller", "api-server")


def sextant(data_dir: Path, *args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return run_cli(data_dir, *args, timeout=timeout, env=cli_env(env))


def wait_until(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def _up(data_dir: Path) -> str:
    """`sextant up --detach`'s output."""
    up = sextant(data_dir, "up", "--detach", "--port", "0", timeout=120)
    assert up.returncode == 0, up.stderr + up.stdout
    return up.stdout


@pytest.fixture(scope="module")
def stack_and_output(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("stack")
    output = _up(data_dir)
    yield data_dir, output
    sextant(data_dir, "down", timeout=120)


@pytest.fixture(scope="module")
def stack(stack_and_output):
    return stack_and_output[0]


@pytest.fixture
def own_stack(tmp_path):
    _up(tmp_path)
    yield tmp_path
    sextant(tmp_path, "down", timeout=120)


def web_ui_url(data_dir: Path) -> str:
    """The sign-in URL `sextant up` should print: the API server's address and the stack's token."""
    token = (data_dir / "token").read_text().strip()
    return f"https://{state(data_dir)['services']['api-server']['address']}/?{urlencode({'token': token})}"


def state(data_dir: Path) -> dict:
    return json.loads((data_dir / "stack.json").read_text())


def status_when_serving(data_dir: Path, what: str) -> dict[str, list[str]]:
    """`sextant status` rows once the DB manager's health is SERVING (status exits 1 until then)."""
    def serving():
        status = sextant(data_dir, "status")
        lines = status.stdout.splitlines()
        assert lines[1].split()[:6] == ["SERVICE", "PID", "STATE", "RESTARTS", "ADDRESS", "HEALTH"]
        rows = {line.split()[0]: line.split() for line in lines[2:]}
        if rows["db-manager"][5] != "SERVING" or rows["api-server"][5] != "SERVING":
            return None
        assert status.returncode == 0, status.stdout + status.stderr
        return rows

    return wait_until(serving, what=what)


def test_up_writes_state_and_status_reports_every_service(stack_and_output):
    data_dir, output = stack_and_output
    assert f"Web UI: {web_ui_url(data_dir)}\n" in output
    assert (data_dir / "address").read_text().startswith("127.0.0.1:")
    token = (data_dir / "token").read_text().strip()
    assert len(token) >= 32 and oct((data_dir / "token").stat().st_mode & 0o777) == "0o600"
    for name in SERVICES:
        assert (data_dir / "run" / f"{name}.pid").is_file()
        assert (data_dir / "logs" / f"{name}.log").is_file()
    # the DB manager answers health once it is up (up --detach may return a moment before)
    rows = status_when_serving(data_dir, "the DB manager to serve")
    assert set(rows) == set(SERVICES)
    for name, row in rows.items():
        assert row[2] == "up" and row[3] == "0"  # the real services started without crashing
        # the DB manager serves gRPC and the API server HTTPS; the controllers are clients
        assert row[5] == ("SERVING" if name in ("db-manager", "api-server") else "-")
    status = sextant(data_dir, "status")
    assert token not in status.stdout + status.stderr
    assert "(driver sqlite3)" in status.stdout.splitlines()[0]  # the stack's default database
    # every service serves Prometheus metrics; each controller its own reconcile counters
    for name, svc in state(data_dir)["services"].items():
        with urllib.request.urlopen(f"http://127.0.0.1:{svc['metrics_port']}/metrics", timeout=10) as response:
            text = response.read().decode()
        expected = {"db-manager": "sextant_grpc_requests_total", "api-server": 'sextant_api_requests_total{code="200"'}\
            .get(name, f'sextant_controller_reconciles_total{{controller="{name}",result="done"}}')
        assert expected in text, name
    # the DB manager behind the stack answers the CLI
    listed = sextant(data_dir, "get", "experiments")
    assert listed.returncode == 0, listed.stdout + listed.stderr


def test_data_directory_is_private(stack):
    """Issue 21: experiment data, logs and state are readable by their owner only (0700 / 0600),
    including what the services create (the SQLite database)."""
    data_dir = stack
    status_when_serving(data_dir, "the DB manager to serve")
    assert (data_dir / "sextant.db").is_file()
    for directory in (data_dir, data_dir / "logs", data_dir / "run"):
        assert directory.stat().st_mode & 0o777 == 0o700, directory
        for entry in directory.iterdir():
            if entry.is_file():
                assert entry.stat().st_mode & 0o077 == 0, f"{entry} is {oct(entry.stat().st_mode & 0o777)}"


def test_make_private_narrows_what_an_older_version_left_open(tmp_path):
    from sextant.stack import StackPaths, make_private

    paths = StackPaths(tmp_path / "data")
    paths.logs.mkdir(parents=True, mode=0o755)
    old = paths.logs / "db-manager.log"
    old.write_text("x")
    old.chmod(0o644)
    (paths.root / "stack.json").write_text("{}")
    make_private(paths)
    assert paths.root.stat().st_mode & 0o777 == 0o700 and paths.logs.stat().st_mode & 0o777 == 0o700
    assert old.stat().st_mode & 0o777 == 0o600
    assert (paths.root / "stack.json").stat().st_mode & 0o777 == 0o600


def test_second_up_says_already_running(stack):
    data_dir = stack
    again = sextant(data_dir, "up", "--detach", "--port", "0")
    assert again.returncode == 1
    assert "already running" in again.stderr
    foreground = sextant(data_dir, "up", "--port", "0")
    assert foreground.returncode == 1 and "already running" in foreground.stderr


def test_foreground_up_prints_the_web_ui_url_and_stops_on_ctrl_c(tmp_path):
    proc = subprocess.Popen(cli_command(tmp_path, "up", "--port", "0"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=cli_env())
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        while not (seen and seen[-1].startswith("Web UI: ")):
            try:
                seen.append(lines.get(timeout=120))
            except queue.Empty:
                raise AssertionError(f"no Web UI line in 120 s:\n{''.join(seen)}") from None
        assert seen[-1] == f"Web UI: {web_ui_url(tmp_path)}\n", "".join(seen)
        assert any(line.startswith("Kubernetes API: export KUBECONFIG=") for line in seen), "".join(seen)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 0
        reader.join(timeout=30)  # the rest of the output, to its end
        rest = [lines.get() for _ in range(lines.qsize())]
        assert "Sextant stack stopped\n" in rest, "".join(rest)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_killed_services_are_restarted(stack):
    data_dir = stack
    before = state(data_dir)["services"]
    for name in ("db-manager", "trial-controller"):
        os.kill(before[name]["pid"], signal.SIGKILL)

    def restarted(name):
        svc = state(data_dir)["services"][name]
        return svc if svc["restarts"] > before[name]["restarts"] and svc["pid"] \
            and svc["pid"] != before[name]["pid"] else None

    for name in ("db-manager", "trial-controller"):
        after = wait_until(lambda name=name: restarted(name), what=f"the {name} to be restarted")
        os.kill(after["pid"], 0)  # alive
    # the restarted DB manager serves again, on the same address
    rows = status_when_serving(data_dir, "the restarted DB manager to serve")
    for name in ("db-manager", "trial-controller"):
        assert rows[name][2] == "up" and int(rows[name][3]) == before[name]["restarts"] + 1
    assert rows["db-manager"][4] == before["db-manager"]["address"]
    listed = sextant(data_dir, "get", "experiments")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    # the other services were left alone
    for name in ("experiment-controller", "suggestion-controller"):
        svc = state(data_dir)["services"][name]
        assert svc["restarts"] == before[name]["restarts"] and svc["pid"] == before[name]["pid"]


def test_down_stops_every_process_and_status_says_not_running(own_stack):
    data_dir = own_stack
    pids = [svc["pid"] for svc in state(data_dir)["services"].values()]
    assert len(pids) == len(SERVICES) and all(pids)
    supervisor = int((data_dir / "run" / "supervisor.pid").read_text())
    down = sextant(data_dir, "down", timeout=120)
    assert down.returncode == 0 and "stopped" in down.stdout
    for pid in [*pids, supervisor]:
        wait_until(lambda pid=pid: not _alive(pid), what=f"pid {pid} to exit")
    status = sextant(data_dir, "status")
    assert status.returncode == 1 and "no Sextant stack is running" in status.stdout
    assert not (data_dir / "address").exists()
    # down again is harmless
    assert sextant(data_dir, "down").returncode == 0


def test_an_auto_stack_without_an_engine_warns_at_apply_that_the_image_goes_unused(tmp_path):
    """The stack records the Docker engine its trial controller uses (its DOCKER_HOST); apply
    asks that engine, finds none, and says what will happen to the trials' image."""
    engine = f"unix://{tmp_path}/no-engine.sock"  # nobody listens there
    data_dir = tmp_path / "data"
    up = sextant(data_dir, "up", "--detach", "--port", "0", "--runtime", "auto", env={"DOCKER_HOST": engine},
                 timeout=120)
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        assert (state(data_dir)["runtime"], state(data_dir)["docker_host"]) == ("auto", engine)
        manifest = tmp_path / "imaged.yaml"
        manifest.write_text(trivial_experiment("stack-auto", max_trials=1, parallel=1))
        applied = sextant(data_dir, "apply", "-f", str(manifest), env={"DOCKER_HOST": ""})  # the stack's engine is asked
        assert applied.returncode == 0, applied.stderr
        assert applied.stderr.startswith(
            "Warning: experiment stack-auto: its trials name the image docker.io/library/python:3.12, but this "
            "stack runs trials on Docker (runtime auto) and no Docker engine answers ("), applied.stderr
        assert "so they run as local processes on this machine, without the image" in applied.stderr
    finally:
        sextant(data_dir, "down", timeout=120)


def test_commands_without_a_stack_say_how_to_start_one(tmp_path):
    result = sextant(tmp_path, "get", "experiments")
    assert result.returncode == 1
    assert "sextant up" in result.stderr and "Traceback" not in result.stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
