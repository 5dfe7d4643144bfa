"""The metrics collector as a sidecar of a trial's pod, so that trial images need nothing of
Sextant (Katib's example images work unchanged): what the pod webhook (``/mutate-pod``) does to
a trial's primary pod.

The primary container's command runs under a fixed ``sh`` script that passes the original
command through as its arguments (``"$@"``: never parsed by the shell), sends its output to a
file in a volume shared with the sidecar (StdOut collection), and writes its exit code there
when it ends. The sidecar, running the Sextant image, runs the metrics collector on that file
(or on the trial's own metrics file or event directory, which the shared volume also holds),
reports to the DB manager while the training runs (with the token and CA of
``SidecarSettings.access``), and exits with the training's code once the
exit code appears. Like Katib's injection, this needs ``sh`` in the trial image and the primary
container's ``command`` (an image's entrypoint cannot be read here), and is meant for
``restartPolicy: Never`` pods.

Katib's names are kept: the volume ``metrics-volume``, the sidecar
``metrics-logger-and-collector`` (``metrics-collector`` for TensorFlowEvent), the mount
``/var/log/katib`` for StdOut, the file's directory for File and the event directory for
TensorFlowEvent.
"""

from __future__ import annotations

import copy
import posixpath
from dataclasses import dataclass, replace
from typing import Any

from sextant.metric_lines import TERMINATION_LOG_ENV
from sextant.resources.models import TRIAL_LABEL
from sextant.runtime.collector_settings import CollectorSettings
from sextant.runtime.db_manager_access import DEFAULT_TOKEN_SECRET, DBManagerAccess

VOLUME = "metrics-volume"
STDOUT_DIR = "/var/log/katib"
STDOUT_FILE = "metrics.log"
EXIT_FILE = "sextant-exit-code"
SIDECAR_KINDS = ("StdOut", "File", "TensorFlowEvent")
# The wrapper of the training command: fixed text; the command is its argument list. A SIGTERM to
# the pod reaches the training, and the exit code is written atomically for the sidecar.
WRAPPER = (
    'if [ -n "$SEXTANT_METRICS_FILE" ]; then "$@" >>"$SEXTANT_METRICS_FILE" 2>&1 & else "$@" & fi\n'
    'child=$!\n'
    'trap \'kill -TERM "$child" 2>/dev/null\' TERM INT\n'
    'while :; do wait "$child"; code=$?; kill -0 "$child" 2>/dev/null || break; done\n'
    'echo "$code" >"$SEXTANT_EXIT_FILE.tmp" && mv "$SEXTANT_EXIT_FILE.tmp" "$SEXTANT_EXIT_FILE"\n'
    'exit "$code"\n')


@dataclass(frozen=True)
class SidecarSettings:
    image: str  # the Sextant image
    db_manager: str  # the DB manager address the collector reports to
    # Its token and CA, from Secrets in the trial's namespace.
    access: DBManagerAccess = DBManagerAccess(token_secret=DEFAULT_TOKEN_SECRET)
    python: str = "python"


def sidecar_name(kind: str) -> str:
    return "metrics-collector" if kind == "TensorFlowEvent" else "metrics-logger-and-collector"


def shared_directory(spec: CollectorSettings) -> str:
    if spec.kind == "StdOut" or not spec.path:
        return STDOUT_DIR
    return spec.path.rstrip("/") if spec.kind == "TensorFlowEvent" else posixpath.dirname(spec.path)


def primary_container(pod: dict[str, Any], name: str | None) -> dict[str, Any] | None:
    containers = (pod.get("spec") or {}).get("containers") or []
    if name:
        return next((c for c in containers if c.get("name") == name), None)
    return containers[0] if len(containers) == 1 else None


def inject(pod: dict[str, Any], spec: CollectorSettings, trial: str, settings: SidecarSettings,
           primary: str | None = None) -> dict[str, Any]:
    """The pod with the collector sidecar; the pod unchanged when its kind needs none or there is
    no primary container with a command. Raises ValueError for a pod that cannot be collected."""
    if spec.kind not in SIDECAR_KINDS:
        return pod
    out = copy.deepcopy(pod)
    container = primary_container(out, primary)
    if container is None:
        raise ValueError(f"no primary container {primary or ''!r} in the pod".replace(" ''", ""))
    if not container.get("command"):
        raise ValueError(f"container {container.get('name')!r} has no command: the metrics collector needs "
                         "it to wrap the training (an image's entrypoint cannot be read)")
    directory = shared_directory(spec)
    exit_file = posixpath.join(directory, EXIT_FILE)
    original = [*container["command"], *(container.get("args") or [])]
    container["command"] = ["sh", "-c", WRAPPER, "sextant-trial", *original]
    container.pop("args", None)
    env = [e for e in container.get("env") or [] if e.get("name") not in ("SEXTANT_METRICS_FILE", "SEXTANT_EXIT_FILE")]
    if spec.kind == "StdOut":
        env.append({"name": "SEXTANT_METRICS_FILE", "value": posixpath.join(directory, STDOUT_FILE)})
    env.append({"name": "SEXTANT_EXIT_FILE", "value": exit_file})
    if not any(e.get("name") == "KATIB_TRIAL_NAME" for e in env):
        env.append({"name": "KATIB_TRIAL_NAME", "value": trial})
    container["env"] = env
    mount = {"name": VOLUME, "mountPath": directory}
    container["volumeMounts"] = [*(container.get("volumeMounts") or []), mount]
    collected = spec if spec.kind != "StdOut" else replace(
        spec, kind="File", path=posixpath.join(directory, STDOUT_FILE), format="TEXT")
    collected = replace(collected, trial=trial, db_manager=settings.db_manager, report="direct")
    sidecar = {
        "name": sidecar_name(spec.kind), "image": settings.image,
        "args": ["services.metrics_collector", *collected.to_argv(), "--",
                 settings.python, "-m", "services.metrics_collector.await_exit", exit_file],
        "env": [{"name": TERMINATION_LOG_ENV, "value": "/dev/termination-log"}],
        "volumeMounts": [dict(mount)],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
    }
    pod_spec = out["spec"]
    pod_spec["containers"] = [*pod_spec["containers"], sidecar]
    pod_spec["volumes"] = [*(pod_spec.get("volumes") or []), {"name": VOLUME, "emptyDir": {}}]
    settings.access.apply(pod_spec, sidecar)
    labels = out.setdefault("metadata", {}).setdefault("labels", {})
    labels[TRIAL_LABEL] = trial
    return out


def is_primary_pod(pod: dict[str, Any], primary_pod_labels: dict[str, str] | None) -> bool:
    """Katib injects only into the pods carrying the trial's primaryPodLabels (every pod if none)."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in (primary_pod_labels or {}).items())
