"""`sextant up` / `status` / `down` and crash-restart, with stand-in services (fast, no database).

The supervisor is the thing under test here: real services are exercised by test_cli.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("sextant-stack")]

FAKES = {name: "tests.e2e.fake_service" for name in
         ("db-manager", "experiment-controller", "suggestion-controller", "trial-controller")}
ROOT = Path(__file__).resolve().parents[2]


def sextant(data_dir: Path, *args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sextant.cli.main", "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, **(env or {})})


def wait_until(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.fixture
def stack(tmp_path):
    env = {"SEXTANT_STACK_MODULES": json.dumps(FAKES)}
    up = sextant(tmp_path, "up", "--detach", "--port", "0", env=env)
    assert up.returncode == 0, up.stderr + up.stdout
    yield tmp_path, env
    sextant(tmp_path, "down")


def state(data_dir: Path) -> dict:
    return json.loads((data_dir / "stack.json").read_text())


def test_up_writes_state_and_status_reports_every_service(stack):
    data_dir, env = stack
    assert (data_dir / "address").read_text().startswith("127.0.0.1:")
    token = (data_dir / "token").read_text().strip()
    assert len(token) >= 32 and oct((data_dir / "token").stat().st_mode & 0o777) == "0o600"
    for name in FAKES:
        assert (data_dir / "run" / f"{name}.pid").is_file()
        assert (data_dir / "logs" / f"{name}.log").is_file()
    status = sextant(data_dir, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    lines = status.stdout.splitlines()
    assert lines[1].split()[:6] == ["SERVICE", "PID", "STATE", "RESTARTS", "ADDRESS", "HEALTH"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert set(rows) == set(FAKES)
    for name, row in rows.items():
        assert row[2] == "up" and row[3] == "0"
        # only the DB manager serves gRPC; the controllers are clients of it
        assert row[5] == ("SERVING" if name == "db-manager" else "-")
    assert token not in status.stdout + status.stderr


def test_second_up_says_already_running(stack):
    data_dir, env = stack
    again = sextant(data_dir, "up", "--detach", "--port", "0", env=env)
    assert again.returncode == 1
    assert "already running" in again.stderr
    foreground = sextant(data_dir, "up", "--port", "0", env=env)
    assert foreground.returncode == 1 and "already running" in foreground.stderr


def test_killed_service_is_restarted(stack):
    data_dir, _ = stack
    before = state(data_dir)["services"]["trial-controller"]
    os.kill(before["pid"], signal.SIGKILL)

    def restarted():
        svc = state(data_dir)["services"]["trial-controller"]
        return svc if svc["restarts"] >= 1 and svc["pid"] and svc["pid"] != before["pid"] else None

    after = wait_until(restarted, what="the trial controller to be restarted")
    os.kill(after["pid"], 0)  # alive
    status = sextant(data_dir, "status")
    row = next(line.split() for line in status.stdout.splitlines() if line.startswith("trial-controller"))
    assert row[2] == "up" and int(row[3]) >= 1
    # the other services were left alone
    assert state(data_dir)["services"]["db-manager"]["restarts"] == 0


def test_down_stops_every_process_and_status_says_not_running(stack):
    data_dir, _ = stack
    pids = [svc["pid"] for svc in state(data_dir)["services"].values()]
    supervisor = int((data_dir / "run" / "supervisor.pid").read_text())
    down = sextant(data_dir, "down")
    assert down.returncode == 0 and "stopped" in down.stdout
    for pid in [*pids, supervisor]:
        wait_until(lambda pid=pid: not _alive(pid), what=f"pid {pid} to exit")
    status = sextant(data_dir, "status")
    assert status.returncode == 1 and "no Sextant stack is running" in status.stdout
    assert not (data_dir / "address").exists()
    # down again is harmless
    assert sextant(data_dir, "down").returncode == 0


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
