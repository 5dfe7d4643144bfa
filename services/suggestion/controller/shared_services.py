"""Where a Suggestion's algorithm runs: its own service, or one shared by every experiment.

Katib starts one algorithm Deployment per experiment. Sextant's algorithm servers keep each
experiment's optimizer state apart (keyed by namespace and name, see ``NAMESPACE_METADATA``), so
one process per algorithm can serve every experiment that uses it: a second experiment costs
neither ~70 MB of memory nor a start-up that imports hyperopt/optuna again. That is the default
of the local stack; Kubernetes keeps Katib's per-experiment services unless configured.

Lifecycle of a shared service (``<algorithm>`` or ``<algorithm>-<early-stopping algorithm>`` in
``SHARED_NAMESPACE``):

* started on first use, by the reconcile pass of a Suggestion that needs it (``ensure_service``
  also starts it again if it died);
* never started for a deleted or finished experiment (the pass returns before that);
* stopped by ``sweep`` once no live Suggestion has used it for ``idle_seconds``;
* restart-safe: the runtime re-adopts the running process, and a restarted controller gives a
  service nobody uses a whole idle period from the moment it first sees it.

A Suggestion with ``resumePolicy: FromVolume`` keeps a service of its own even in shared mode:
its state directory belongs to that experiment alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from enum import StrEnum

from sextant.resources.models import ResumePolicy, Suggestion
from sextant.runtime.base import OwnedService

SHARED_NAMESPACE = "sextant-system"
"""Where shared algorithm services live (a directory of the local data dir, or a namespace)."""

DEFAULT_IDLE_SECONDS = 120.0


class ServiceMode(StrEnum):
    SHARED = "shared"
    PER_EXPERIMENT = "per-experiment"


def per_experiment_name(experiment: str, algorithm: str) -> str:
    """Katib's name for an experiment's own service: ``<experiment>-<algorithm>``."""
    return f"{experiment}-{algorithm}"


def shared_name(algorithm: str, early_stopping: str | None) -> str:
    """The stack's shared service for an algorithm (and early-stopping algorithm, which the
    same process serves)."""
    return f"{algorithm}-{early_stopping}" if early_stopping else algorithm


class Placement:
    """Decides each Suggestion's service and stops shared services nobody uses any more."""

    def __init__(self, mode: ServiceMode = ServiceMode.PER_EXPERIMENT, *,
                 shared_namespace: str = SHARED_NAMESPACE, idle_seconds: float = DEFAULT_IDLE_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.mode = mode
        self.shared_namespace = shared_namespace
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._last_used: dict[str, float] = {}
        self._lock = threading.Lock()

    def is_shared(self, sugg: Suggestion) -> bool:
        return self.mode == ServiceMode.SHARED and sugg.spec.resume_policy != ResumePolicy.FROM_VOLUME

    def service_of(self, sugg: Suggestion) -> tuple[str, str]:
        """(namespace, name) of the service that answers for ``sugg``."""
        if self.is_shared(sugg):
            early = sugg.spec.early_stopping
            return self.shared_namespace, shared_name(sugg.spec.algorithm.algorithm_name,
                                                      early.algorithm_name if early is not None else None)
        return sugg.metadata.namespace, per_experiment_name(sugg.metadata.name, sugg.spec.algorithm.algorithm_name)

    def used(self, name: str) -> None:
        """A live Suggestion is about to use the shared service ``name``."""
        with self._lock:
            self._last_used[name] = self._clock()

    def idle_services(self, owned: Iterable[OwnedService], in_use: Iterable[str]) -> list[str]:
        """Names of shared services (in ``owned``) that no live Suggestion used for
        ``idle_seconds``; ``in_use`` are those live Suggestions' services right now."""
        now = self._clock()
        busy = set(in_use)
        idle = []
        with self._lock:
            for name in busy:
                self._last_used[name] = now
            present = set()
            for svc in owned:
                if svc.namespace != self.shared_namespace or svc.suggestion:
                    continue
                present.add(svc.name)
                # First sight (e.g. after a controller restart): the idle period starts now.
                last = self._last_used.setdefault(svc.name, now)
                if now - last >= self.idle_seconds:
                    idle.append(svc.name)
            for name in set(self._last_used) - present - busy:
                del self._last_used[name]  # stopped (by us or anyone): forget it
        return idle

    def still_idle(self, name: str) -> bool:
        """Checked again right before stopping: a pass may have used it meanwhile."""
        with self._lock:
            last = self._last_used.get(name)
            return last is None or self._clock() - last >= self.idle_seconds

    def forget(self, name: str) -> None:
        with self._lock:
            self._last_used.pop(name, None)
