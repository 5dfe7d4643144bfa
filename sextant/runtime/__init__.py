"""Where trials and algorithm services run; ``make_runtime`` picks the implementation by name."""

from __future__ import annotations

from typing import Any

from sextant.runtime.base import (
    JobPhase,
    JobSpec,
    JobStatus,
    Runtime,
    ServiceSpec,
    ServiceStatus,
)

RUNTIME_KINDS = ("local", "docker", "auto", "kubernetes")

__all__ = ["RUNTIME_KINDS", "JobPhase", "JobSpec", "JobStatus", "Runtime", "ServiceSpec", "ServiceStatus",
           "make_runtime"]


def make_runtime(kind: str, **options: Any) -> Runtime:
    """``local`` -> LocalRuntime(**options) (e.g. ``data_dir``); ``docker`` / ``auto`` ->
    DockerRuntime(mode=kind, **options) (trials that name an image run on the local Docker engine;
    ``auto`` falls back to local processes when no engine answers); ``kubernetes`` (or ``k8s``) ->
    KubernetesRuntime(**options) (``api_client``, ``kubeconfig``, ``context``, ``in_cluster``,
    ``trial_resources``...). Imports are lazy so the local stack never loads the Kubernetes client."""
    name = (kind or "").strip().lower()
    if name == "local":
        from sextant.runtime.local import LocalRuntime

        return LocalRuntime(**options)
    if name in ("docker", "auto"):
        from sextant.runtime.docker_runtime import DockerRuntime

        return DockerRuntime(mode=name, **options)  # type: ignore[arg-type]
    if name in ("kubernetes", "k8s"):
        from sextant.runtime.kubernetes import KubernetesRuntime

        return KubernetesRuntime(**options)
    raise ValueError(f"runtime {kind!r}: must be one of {', '.join(RUNTIME_KINDS)}")
