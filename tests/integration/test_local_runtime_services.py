"""LocalRuntime services: start, health, re-adoption by a second runtime, delete, restart after death.

The services are the real ones: the random algorithm service and the medianstop early-stopping
service, started by the runtime as processes."""

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from sextant.runtime import process
from sextant.runtime.base import ServiceSpec
from sextant.runtime.local import LocalRuntime

ALGORITHM = ["{python}", "-m", "services.suggestion.algorithms", "--algorithm", "random", "--port", "{port}"]
EARLY_STOPPING = ["{python}", "-m", "services.suggestion.earlystopping", "--port", "{port}"]


def _spec(name="exp1-random", es=False):
    return ServiceSpec(
        name=name, namespace="default", algorithm="random",
        command=ALGORITHM,
        early_stopping_command=EARLY_STOPPING if es else None,
    )


def _starts(directory: Path, at_least: int, log: str = "log") -> int:
    """How many times the service was started: each start appends its "listening on" line (a
    moment after its health answers, hence the short wait for ``at_least``)."""
    deadline = time.monotonic() + 10
    while (count := (directory / log).read_text().count("listening on ")) < at_least \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


def _wait_ready(rt, name="exp1-random"):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        st = rt.service_status("default", name)
        if st.ready:
            return st
        time.sleep(0.1)
    raise AssertionError(f"service never became ready: {st}")


def test_start_ready_readopt_delete(tmp_path):
    rt = LocalRuntime(tmp_path)
    st = rt.ensure_service(_spec())
    assert st.exists and st.address.startswith("127.0.0.1:")
    st = _wait_ready(rt)
    state = process.read_json(tmp_path / "services/default/exp1-random/state.json")
    pid = state["main"]["pid"]
    # A second runtime (a restarted controller) re-adopts instead of starting another process.
    rt2 = LocalRuntime(tmp_path)
    st2 = rt2.ensure_service(_spec())
    assert st2.address == st.address
    assert process.read_json(tmp_path / "services/default/exp1-random/state.json")["main"]["pid"] == pid
    assert _starts(tmp_path / "services/default/exp1-random", 1) == 1
    rt2.delete_service("default", "exp1-random")
    assert not (tmp_path / "services/default/exp1-random").exists()
    assert not process.is_alive(process.ProcessId(pid, state["main"]["start_time"]))
    assert rt.service_status("default", "exp1-random").exists is False


def test_dead_service_is_restarted_and_keep_state(tmp_path):
    rt = LocalRuntime(tmp_path)
    rt.ensure_service(_spec(es=True))
    st = _wait_ready(rt)
    assert st.early_stopping_address and st.early_stopping_address != st.address
    directory = tmp_path / "services/default/exp1-random"
    (directory / "data" / "checkpoint").write_text("algorithm state")  # what FromVolume keeps
    state = process.read_json(directory / "state.json")
    os.kill(state["main"]["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while rt.service_status("default", "exp1-random").exists and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rt.service_status("default", "exp1-random").exists is False
    rt.ensure_service(_spec(es=True))
    _wait_ready(rt)
    new = process.read_json(tmp_path / "services/default/exp1-random/state.json")
    assert new["main"]["pid"] != state["main"]["pid"]
    assert _starts(directory, 2) == 2 and _starts(directory, 2, "early-stopping.log") == 2  # both afresh
    rt.delete_service("default", "exp1-random", keep_state=True)
    assert (directory / "data" / "checkpoint").read_text() == "algorithm state"  # survives for FromVolume
    assert not process.is_alive(process.ProcessId.from_dict(new["main"]))
    assert not process.is_alive(process.ProcessId.from_dict(new["early_stopping"]))


def test_pid_reuse_guard(tmp_path):
    me = process.ProcessId(os.getpid(), process.start_time_of(os.getpid()))
    assert process.is_alive(me)
    assert not process.is_alive(process.ProcessId(me.pid, me.start_time + 1))


@pytest.mark.parametrize("bad", ["../x", "A", "a/b", "", "-a"])
def test_names_validated(tmp_path, bad):
    rt = LocalRuntime(tmp_path)
    with pytest.raises(ValueError, match="name"):
        rt.service_status("default", bad)
    with pytest.raises(ValueError, match="namespace"):
        rt.service_status(bad, "x")
    assert sys.executable
