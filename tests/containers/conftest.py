"""A Docker engine for the ``containers`` tests, which only ``make test-containers`` runs.

Tests here are marked ``containers`` and left out of every run whose ``-m`` expression does not
name that marker (so the default ``make test`` never builds images). ``docker_engine`` uses a
running engine, or starts one the way this project's machines can run it (``dockerd
--bridge=none --iptables=false``; the containers use the host's network) and stops it again at
the end. Where no engine can start, the tests skip with the reason, or fail when
``SEXTANT_REQUIRE_CONTAINERS=1``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

MARKER = "containers"
SOCKET = "/var/run/docker.sock"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if MARKER in (config.option.markexpr or ""):
        return
    left_out = [item for item in items if item.get_closest_marker(MARKER)]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not item.get_closest_marker(MARKER)]


def _no_engine(reason: str) -> None:
    message = f"NO CONTAINER ENGINE, container tests not run: {reason}"
    if os.environ.get("SEXTANT_REQUIRE_CONTAINERS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _engine_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    if shutil.which("docker") is None:
        _no_engine("the docker client is not installed (Debian: apt-get install docker.io)")
    if _engine_answers():
        yield
        return
    dockerd = shutil.which("dockerd") or ("/usr/sbin/dockerd" if Path("/usr/sbin/dockerd").exists() else None)
    if dockerd is None:
        _no_engine("no engine answers and dockerd is not installed")
    if os.geteuid() != 0:
        _no_engine("no engine answers and starting dockerd needs root")
    log_path = tmp_path_factory.mktemp("dockerd") / "dockerd.log"
    with open(log_path, "wb") as log:
        daemon = subprocess.Popen([dockerd, "--bridge=none", "--iptables=false", f"--host=unix://{SOCKET}"],
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 90
    while not _engine_answers():
        if daemon.poll() is not None or time.monotonic() > deadline:
            if daemon.poll() is None:
                daemon.terminate()
                daemon.wait(30)
            tail = log_path.read_text(errors="replace")[-1500:]
            _no_engine(f"dockerd did not start (exit {daemon.returncode}); its log ends:\n{tail}")
        time.sleep(0.5)
    try:
        yield
    finally:
        daemon.send_signal(signal.SIGTERM)  # the engine we started, by its pid; it stops its containers
        try:
            daemon.wait(60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(10)
