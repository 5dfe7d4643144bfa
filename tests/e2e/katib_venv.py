"""Katib's own SDK (PyPI ``kubeflow-katib``) in a virtualenv of its own: its pins (protobuf<5,
and kubernetes<37 for model-object bodies) conflict with Sextant's. Built once per pin set under
``~/.cache/sextant-test/`` (outside the repository) and reused; the tests skip, saying why, only
when PyPI cannot be reached."""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# kubernetes 36 types ObjectMeta's maps as "dict[str, str]", which the SDK's own deserializer
# cannot read (any labelled object fails); 37 rejects the SDK's model bodies.
PINS = ("kubeflow-katib==0.19.0", "kubernetes>=35,<36")
CACHE = Path.home() / ".cache" / "sextant-test"


def _build(venv: Path) -> None:
    uv = shutil.which("uv")
    if uv:
        subprocess.run([uv, "venv", "-q", str(venv), "--python", sys.executable], check=True, timeout=300)
        subprocess.run([uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), *PINS],
                       check=True, timeout=900, capture_output=True, text=True)
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=600)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *PINS],
                       check=True, timeout=900, capture_output=True, text=True)


def katib_python() -> Path:
    """The interpreter of the Katib SDK virtualenv (built on first use)."""
    key = hashlib.sha256(json.dumps([PINS, sys.version_info[:2]]).encode()).hexdigest()[:12]
    venv = CACHE / f"katib-venv-{key}"
    python = venv / "bin" / "python"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"katib-venv-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers build it once
        ready = venv / ".ready"
        if not ready.exists():
            shutil.rmtree(venv, ignore_errors=True)
            try:
                _build(venv)
            except subprocess.CalledProcessError as err:
                output = f"{err.stdout or ''}{err.stderr or ''}"
                if any(word in output for word in ("Failed to fetch", "ConnectError", "Network is unreachable",
                                                   "Temporary failure in name resolution", "No route to host")):
                    pytest.skip(f"SKIPPED LOUDLY: PyPI unreachable, cannot install {PINS}: {output[-500:]}")
                raise
            ready.write_text("ok\n")
    return python
