"""The CLI rides out a DB manager restart (retries UNAVAILABLE, then gives up with a clear
message and exit 1), on the shared local stack.

To make the outage deterministic the supervisor is paused (SIGSTOP) while the DB manager is
killed, so nothing restarts it until the test resumes the supervisor (SIGCONT).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.local_stack import GROUP, ROOT, cli_command, cli_env, local_stack_fixture  # noqa: F401 - the local_stack fixture
from tests.experiments import small_experiment

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(GROUP)]

EXPERIMENT = small_experiment("ride-out", ["python", "-c", "import sys; print('score=' + sys.argv[1])",
                                            "${trialParameters.x}"])


def _pid(path: Path) -> int:
    return int(path.read_text().strip())


def _healthy(stack) -> bool:
    return stack.sextant("get", "experiments", timeout=60).returncode == 0


@contextmanager
def db_manager_down(stack):
    """Kills the DB manager with its supervisor paused; resuming restarts it (same port)."""
    run = stack.data_dir / "run"
    supervisor = _pid(run / "supervisor.pid")
    os.kill(supervisor, signal.SIGSTOP)
    resumed = False
    try:
        db_manager = _pid(run / "db-manager.pid")
        os.kill(db_manager, signal.SIGKILL)

        def resume() -> None:
            nonlocal resumed
            os.kill(supervisor, signal.SIGCONT)
            resumed = True

        yield resume
    finally:
        if not resumed:
            os.kill(supervisor, signal.SIGCONT)
        deadline = time.monotonic() + 60
        while not _healthy(stack):  # leave the shared stack as we found it
            assert time.monotonic() < deadline, "the DB manager did not come back"
            time.sleep(0.5)


def _cli(stack, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(cli_command(stack.data_dir, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env=cli_env(env))


def test_wait_and_get_ride_out_a_db_manager_restart(local_stack):
    applied = local_stack.sextant("apply", "-f", "-", input=EXPERIMENT)
    assert applied.returncode == 0, applied.stderr
    try:
        # A window well beyond the outage: on a loaded machine the restarted DB manager can take
        # longer than the default 30 s to answer, and what is tested is the retrying itself.
        window = {"SEXTANT_CLI_RETRY_SECONDS": "150"}
        with db_manager_down(local_stack) as resume:
            waiter = _cli(local_stack, "wait", "experiment", "ride-out", "--for=condition=Succeeded",
                          "--timeout=5m", env=window)
            getter = _cli(local_stack, "get", "experiment", "ride-out", env=window)
            time.sleep(5.0)  # longer than a short retry window: both must keep retrying
            resume()
            out, err = waiter.communicate(timeout=320)
            assert waiter.returncode == 0, out + err
            assert "condition met (Succeeded)" in out
            out, err = getter.communicate(timeout=180)
            assert getter.returncode == 0, out + err
            assert "ride-out" in out
    finally:
        local_stack.sextant("delete", "experiment", "ride-out")


def test_gives_up_with_a_clear_message(local_stack):
    with db_manager_down(local_stack):
        proc = _cli(local_stack, "describe", "experiment", "anything", env={"SEXTANT_CLI_RETRY_SECONDS": "2"})
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, out + err
        assert "cannot reach the Sextant stack" in err and "gave up after retrying for 2s" in err
