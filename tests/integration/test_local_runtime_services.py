"""LocalRuntime services: start, health, re-adoption by a second runtime, delete, restart after death."""

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from sextant.runtime import process
from sextant.runtime.base import ServiceSpec
from sextant.runtime.local import LocalRuntime

FAKE = str(Path(__file__).with_name("fake_algorithm_server.py"))


def _spec(name="exp1-random", es=False):
    return ServiceSpec(
        name=name, namespace="default", algorithm="random",
        command=["{python}", FAKE, "--port", "{port}", "--state-dir", "{state_dir}"],
        early_stopping_command=(["{python}", FAKE, "--port", "{port}", "--name",
                                 "manager.v1beta1.EarlyStopping"] if es else None),
    )


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
    started = (tmp_path / "services/default/exp1-random/data/started").read_text().splitlines()
    assert len(started) == 1
    rt2.delete_service("default", "exp1-random")
    assert not (tmp_path / "services/default/exp1-random").exists()
    assert not process.is_alive(process.ProcessId(pid, state["main"]["start_time"]))
    assert rt.service_status("default", "exp1-random").exists is False


def test_dead_service_is_restarted_and_keep_state(tmp_path):
    rt = LocalRuntime(tmp_path)
    rt.ensure_service(_spec(es=True))
    st = _wait_ready(rt)
    assert st.early_stopping_address and st.early_stopping_address != st.address
    state = process.read_json(tmp_path / "services/default/exp1-random/state.json")
    os.kill(state["main"]["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while rt.service_status("default", "exp1-random").exists and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rt.service_status("default", "exp1-random").exists is False
    rt.ensure_service(_spec(es=True))
    _wait_ready(rt)
    new = process.read_json(tmp_path / "services/default/exp1-random/state.json")
    assert new["main"]["pid"] != state["main"]["pid"]
    rt.delete_service("default", "exp1-random", keep_state=True)
    data = tmp_path / "services/default/exp1-random/data/started"
    assert len(data.read_text().splitlines()) == 2  # state dir survives for FromVolume
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
