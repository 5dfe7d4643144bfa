"""Detached local processes that a later controller can find again.

A process is identified by its pid *and* its start time (field 22 of ``/proc/<pid>/stat``, in
clock ticks since boot), so a recycled pid is never mistaken for the process we started.
Processes run in their own session (and so their own process group) without a shell; stopping
one signals the whole group so that children of the command go too.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

# Kubernetes-style names (DNS-1123 subdomain): they become path components, so they must not
# be able to contain "/" or be "." / "..".
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")

# Popen objects of processes started by *this* process: polling them reaps the zombie.
_children: dict[int, subprocess.Popen[bytes]] = {}


def validate_name(value: str, field: str) -> str:
    """Returns ``value`` if it is a valid Kubernetes name, else raises ValueError naming ``field``."""
    if not isinstance(value, str) or len(value) > 253 or not _NAME.match(value) or ".." in value:
        raise ValueError(
            f"{field}: {value!r} is not a valid name (lower-case letters, digits, '-' and '.', "
            "starting and ending with a letter or digit, at most 253 characters)")
    return value


@dataclass(frozen=True)
class ProcessId:
    pid: int
    start_time: int  # clock ticks since boot, from /proc/<pid>/stat

    def to_dict(self) -> dict[str, int]:
        return {"pid": self.pid, "start_time": self.start_time}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ProcessId | None:
        if not data or "pid" not in data or "start_time" not in data:
            return None
        return cls(int(data["pid"]), int(data["start_time"]))


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    rest = raw[raw.rfind(")") + 2:].split()
    return rest  # rest[0] is field 3 (state), rest[19] is field 22 (starttime)


def start_time_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def is_alive(proc: ProcessId | None) -> TypeGuard[ProcessId]:
    """True if the process exists, is the one we started, and is not a zombie."""
    if proc is None:
        return False
    child = _children.get(proc.pid)
    if child is not None and child.poll() is not None:
        _children.pop(proc.pid, None)
        return False
    fields = _stat_fields(proc.pid)
    if not fields or int(fields[19]) != proc.start_time:
        return False
    return fields[0] not in ("Z", "X")


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> ProcessId:
    """Starts ``argv`` detached (new session, no shell), output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        child = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True,
            close_fds=True,
        )
    _children[child.pid] = child
    started = start_time_of(child.pid)
    if started is None:  # exited (and was reaped) already: identity by pid alone is meaningless
        started = -1
    return ProcessId(child.pid, started)


def child_of(proc: ProcessId) -> subprocess.Popen[bytes] | None:
    """The Popen of ``proc`` if this process started it (and has not reaped it yet)."""
    return _children.get(proc.pid)


def forget_child(proc: ProcessId) -> None:
    """Drops our Popen of ``proc`` once it has been reaped (``is_alive`` then reads /proc)."""
    _children.pop(proc.pid, None)


def signal_group(proc: ProcessId, sig: int) -> bool:
    """Sends ``sig`` to the process group of ``proc`` if it is still the same process."""
    if not is_alive(proc):
        return False
    try:
        os.killpg(proc.pid, sig)  # the process leads its own group (start_new_session)
    except ProcessLookupError:
        return False
    except PermissionError:
        os.kill(proc.pid, sig)
    return True


def terminate(proc: ProcessId | None, grace: float = 5.0) -> None:
    """SIGTERM to the group, then SIGKILL after ``grace`` seconds if still alive."""
    if proc is None or not signal_group(proc, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not is_alive(proc):
            break
        time.sleep(0.05)
    else:
        signal_group(proc, signal.SIGKILL)
    # The group may hold stragglers that ignored SIGTERM after the leader exited.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    child = _children.pop(proc.pid, None)
    if child is not None:
        try:
            child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Atomic write: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, sort_keys=True))  # no indent: the C encoder (3x less CPU)
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (FileNotFoundError, json.JSONDecodeError):
        return None
