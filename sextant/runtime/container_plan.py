"""How a trial's primary container becomes a Docker container: a pure mapping, no engine calls.

The Docker runtime runs the primary container of the rendered runSpec as Kubernetes would:

* ``image`` as is; ``command`` replaces the image's ENTRYPOINT and ``args`` its CMD (with only
  ``command`` given, the image's CMD is dropped too, as on Kubernetes). Nothing is rewritten:
  ``python`` means the image's Python, paths are the image's paths.
* ``env`` values (``valueFrom`` entries are skipped: there are no Secrets or ConfigMaps here),
  then the runtime's own variables (``KATIB_TRIAL_NAME``...).
* ``workingDir`` as the container's working directory (the image's own when unset).
* ``resources.limits.cpu`` -> a CPU quota (``nano_cpus``), ``limits.memory`` -> a hard memory
  limit (swap included, so the limit is the limit as on Kubernetes), ``requests.cpu`` -> CPU shares (1024 per CPU), ``requests.memory`` -> a soft memory
  reservation, ``nvidia.com/gpu`` (limit, else request) -> that many GPUs through the engine's
  device requests. Quantities use Kubernetes' notation (``500m``, ``2``, ``512Mi``, ``1G``).
* The host's network (the engine here runs without a bridge; trials reach the DB manager on
  127.0.0.1 as local ones do).
* For File / TensorFlowEvent collectors, the directory Katib would mount (see
  ``metrics_volume.mount_path``) is bind-mounted from the job's directory on the host, where the
  collector reads it after the container ends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

STACK_LABEL = "sextant.io/stack"
NAMESPACE_LABEL = "sextant.io/namespace"
TRIAL_LABEL = "sextant.io/trial"
NANO = 1_000_000_000
CPU_SHARES_PER_CPU = 1024
GPU_RESOURCE = "nvidia.com/gpu"

class ContainerSpecError(ValueError):
    """The container cannot be run by the Docker runtime (the message names the field)."""


def parse_quantity(value: Any, field_name: str) -> Decimal:
    """A Kubernetes quantity (``"500m"``, ``2``, ``"1.5Gi"``, ``"1e9"``) as a number, parsed by the
    Kubernetes client's own parser (imported here: only this runtime needs it)."""
    from kubernetes.utils.quantity import parse_quantity as kubernetes_quantity

    try:
        return Decimal(kubernetes_quantity(value))  # type: ignore[no-untyped-call]
    except (ValueError, TypeError, ArithmeticError):
        raise ContainerSpecError(f"{field_name}: {value!r} is not a Kubernetes quantity "
                                 "(e.g. 500m, 2, 512Mi, 1G)") from None


def stack_id(data_dir: str) -> str:
    """A short, stable id of one stack (its data directory): containers carry it as a label, so
    two stacks sharing an engine never adopt each other's trials."""
    return hashlib.sha256(data_dir.encode()).hexdigest()[:10]


def container_name(stack: str, namespace: str, trial: str) -> str:
    """The trial's container name: fixed, so a second create of the same trial is refused by the
    engine instead of running the trial twice."""
    return f"sextant-{stack}-{namespace}-{trial}"


@dataclass(frozen=True)
class Limits:
    nano_cpus: int | None = None
    cpu_shares: int | None = None
    mem_limit: int | None = None
    mem_reservation: int | None = None
    gpus: int | None = None


def resource_limits(container: Mapping[str, Any]) -> Limits:
    """The container's ``resources`` as Docker limits (see the module docstring)."""
    resources = container.get("resources") or {}
    if not isinstance(resources, Mapping):
        raise ContainerSpecError("resources: must be an object with limits and/or requests")
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    where = "resources"

    def amount(section: Mapping[str, Any], key: str, kind: str) -> Decimal | None:
        if key not in section or section[key] in (None, ""):
            return None
        number = parse_quantity(section[key], f"{where}.{kind}.{key}")
        if number <= 0:
            raise ContainerSpecError(f"{where}.{kind}.{key}: must be greater than 0, got {section[key]!r}")
        return number

    cpu_limit = amount(limits, "cpu", "limits")
    cpu_request = amount(requests, "cpu", "requests")
    mem_limit = amount(limits, "memory", "limits")
    mem_request = amount(requests, "memory", "requests")
    gpus = amount(limits, GPU_RESOURCE, "limits") or amount(requests, GPU_RESOURCE, "requests")
    if gpus is not None and gpus != gpus.to_integral_value():
        raise ContainerSpecError(f"{where}.limits.{GPU_RESOURCE}: must be a whole number, got {gpus}")
    return Limits(
        nano_cpus=int(cpu_limit * NANO) if cpu_limit is not None else None,
        # The engine's minimum share is 2.
        cpu_shares=max(2, int(cpu_request * CPU_SHARES_PER_CPU)) if cpu_request is not None else None,
        mem_limit=int(mem_limit) if mem_limit is not None else None,
        # A reservation above the hard limit is refused by the engine: cap it.
        mem_reservation=(min(int(mem_request), int(mem_limit)) if mem_limit is not None else int(mem_request))
        if mem_request is not None else None,
        gpus=int(gpus) if gpus is not None else None,
    )


def container_env(container: Mapping[str, Any]) -> dict[str, str]:
    """``env`` entries with a value (``valueFrom`` needs Secrets/ConfigMaps, which are not here)."""
    env: dict[str, str] = {}
    for item in container.get("env") or []:
        if isinstance(item, Mapping) and "name" in item and "valueFrom" not in item:
            env[str(item["name"])] = str(item.get("value", ""))
    return env


@dataclass(frozen=True)
class ContainerPlan:
    """What the engine is asked to create for one trial."""

    name: str
    image: str
    entrypoint: list[str] | None  # None: the image's ENTRYPOINT
    command: list[str] | None  # None: the image's CMD (unless entrypoint is set)
    environment: dict[str, str]
    working_dir: str | None
    labels: dict[str, str]
    limits: Limits = Limits()
    binds: dict[str, str] = field(default_factory=dict)  # host directory -> container directory

    def create_arguments(self) -> dict[str, Any]:
        """Keyword arguments of the Docker SDK's ``containers.create``."""
        from docker.types import DeviceRequest  # the docker package is loaded only by this runtime

        args: dict[str, Any] = {
            "image": self.image, "name": self.name, "environment": dict(self.environment),
            "labels": dict(self.labels), "network_mode": "host", "detach": True, "stdin_open": False,
            "tty": False,
        }
        if self.entrypoint is not None:
            args["entrypoint"] = list(self.entrypoint)
            # With the entrypoint replaced, an unset command must not fall back to the image's CMD.
            args["command"] = list(self.command or [])
        elif self.command is not None:
            args["command"] = list(self.command)
        if self.working_dir:
            args["working_dir"] = self.working_dir
        if self.binds:
            args["volumes"] = {host: {"bind": inside, "mode": "rw"} for host, inside in self.binds.items()}
        limits = self.limits
        for key in ("nano_cpus", "cpu_shares", "mem_limit", "mem_reservation"):
            value = getattr(limits, key)
            if value is not None:
                args[key] = value
        if limits.mem_limit is not None:
            args["memswap_limit"] = limits.mem_limit  # no swap beyond the limit, as on Kubernetes
        if limits.gpus is not None:
            args["device_requests"] = [DeviceRequest(count=limits.gpus, capabilities=[["gpu"]])]
        return args


def plan_container(container: Mapping[str, Any], *, name: str, env: Mapping[str, str],
                   labels: Mapping[str, str], binds: Mapping[str, str] | None = None) -> ContainerPlan:
    """The plan for ``container`` (a pod spec's container) with the runtime's ``env`` added."""
    image = str(container.get("image") or "").strip()
    if not image:
        raise ContainerSpecError(f"container {container.get('name')!r}: image is required to run in Docker")
    command = container.get("command")
    args = container.get("args")
    working_dir = container.get("workingDir")
    return ContainerPlan(
        name=name, image=image,
        entrypoint=[str(x) for x in command] if command else None,
        command=[str(x) for x in args] if args else None,
        environment={**container_env(container), **env},
        working_dir=str(working_dir) if working_dir else None,
        labels=dict(labels), limits=resource_limits(container), binds=dict(binds or {}),
    )
