"""``sextant-jobwrap``, the C wrapper of local trial jobs, compiled on first use.

The wrapper's source ships with the package (``jobwrap.c``); the binary is built with the
machine's C compiler into a cache directory, named after a hash of the source so an upgrade
builds afresh, and shared by every runtime on the machine. Without a compiler (or if the build
fails) ``jobwrap_path`` returns None and the runtime falls back to the Python collector
wrapper, which does the same job at a higher start-up cost.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

SOURCE = Path(__file__).with_name("jobwrap.c")
log = logging.getLogger("sextant.runtime.native")
_lock = threading.Lock()
_built: dict[Path, Path | None] = {}


def cache_dir() -> Path:
    """``$SEXTANT_CACHE_DIR``, else ``$XDG_CACHE_HOME/sextant``, else ``~/.cache/sextant``."""
    explicit = os.environ.get("SEXTANT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sextant"


def _compiler() -> str | None:
    for name in (os.environ.get("CC", ""), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def jobwrap_path(directory: Path | None = None) -> Path | None:
    """The compiled wrapper (built now if needed), or None if it cannot be built here."""
    if os.environ.get("SEXTANT_NATIVE_JOBWRAP", "1") == "0":
        return None
    directory = directory or cache_dir()
    with _lock:
        if directory in _built:
            return _built[directory]
        _built[directory] = result = _build(directory)
        return result


def _build(directory: Path) -> Path | None:
    try:
        digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    except OSError:  # an install without the C source: the Python wrapper does the job
        log.warning("native trial wrapper source %s is missing; using the Python wrapper", SOURCE)
        return None
    target = directory / f"sextant-jobwrap-{digest}"
    if os.access(target, os.X_OK):
        return target
    compiler = _compiler()
    if compiler is None:
        return None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # Built beside the target and renamed: another process building at the same moment
        # never sees (or runs) a half-written binary.
        fd, tmp = tempfile.mkstemp(prefix=".jobwrap-", dir=directory)
        os.close(fd)
        done = subprocess.run([compiler, "-O2", "-o", tmp, str(SOURCE)], capture_output=True, timeout=120)
        if done.returncode != 0:
            os.unlink(tmp)
            return None
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    except (OSError, subprocess.SubprocessError):
        return None
    return target
