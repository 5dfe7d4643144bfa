"""The local stand-in for the per-pod metrics volume Katib mounts for File / TensorFlowEvent collectors.

In Kubernetes, Katib's pod webhook mounts an emptyDir at the directory of
``metricsCollectorSpec.source.fileSystemPath.path`` (the path itself for a Directory) into the
trial container and the collector sidecar, so every trial pod writes and reads its own file at
e.g. ``/var/log/katib/metrics.log``. Locally all trials share one filesystem (and
``/var/log/katib`` is usually not writable), so the runtime maps that directory to
``<job dir>/volumes/metrics/`` and rewrites the path prefix wherever it appears in the
collector's settings (its path, a Custom collector's command) and in the primary container's command, args and env values (trainers
are told the path by their arguments, as in Katib's examples).

A prefix is rewritten only as a whole path (``/katib`` matches ``/katib`` and ``/katib/x`` but
not ``/katibx`` or ``/opt/katib``). Relative paths and a mount at ``/`` are left alone.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from sextant.runtime.collector_settings import CollectorSettings

VOLUME_SUBDIR = ("volumes", "metrics")
# Kinds whose collector reads a path the trial writes (Katib mounts a volume for these).
FILE_KINDS = ("File", "TensorFlowEvent", "Custom")


def mount_path(collector: CollectorSettings) -> str | None:
    """The container directory Katib would mount for this collector, or None."""
    kind, path = collector.kind, collector.path
    if kind not in FILE_KINDS or not path or not path.startswith("/"):
        return None
    # File kind → the file's directory; TensorFlowEvent (a Directory) → the path itself. A Custom
    # collector's fileSystemPath kind does not reach us: a trailing "/" marks a directory.
    is_dir = kind == "TensorFlowEvent" or (kind == "Custom" and path.endswith("/"))
    mount = posixpath.normpath(path if is_dir else posixpath.dirname(path.rstrip("/")))
    return None if mount in ("/", "//", ".") else mount


class PathRewriter:
    """Replaces the container mount path by the job's local volume directory inside strings."""

    def __init__(self, mount: str, local: Path):
        self.mount = mount
        self.local = str(local)
        # Not preceded by a path character (so "/opt/katib" does not match "/katib"), and
        # followed by "/" or the end of a path.
        self._pattern = re.compile(r"(?<![\w./-])" + re.escape(mount) + r"(?=/|$|[^\w.-])")

    def __call__(self, value: str) -> str:
        return self._pattern.sub(lambda _m: self.local, value)

    def argv(self, values: Sequence[str]) -> list[str]:
        return [self(v) for v in values]

    def env(self, values: Mapping[str, str]) -> dict[str, str]:
        return {k: self(v) for k, v in values.items()}


def local_volume(collector: CollectorSettings, job_dir: Path) -> PathRewriter | None:
    """Creates ``<job_dir>/volumes/metrics`` and returns the rewriter, if the collector needs one."""
    mount = mount_path(collector)
    if mount is None:
        return None
    local = job_dir.joinpath(*VOLUME_SUBDIR)
    local.mkdir(parents=True, exist_ok=True)
    return PathRewriter(mount, local)
