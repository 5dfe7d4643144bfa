"""The experiment and trial counters Katib's controller exports, on the controllers' /metrics.

Names, help texts and labels are Katib's, so dashboards built for Katib keep working:

* ``katib_experiment_{created,deleted,succeeded,failed}_total`` and
  ``katib_trial_{created,deleted,succeeded,failed,metrics_unavailable}_total``: counters by
  ``namespace``. Created counts when the controller first marks the resource Created (once per
  resource, also across controller restarts); deleted when its informer sees the resource go;
  succeeded / failed / metrics unavailable when the controller marks that end.
* ``katib_experiments_current`` and ``katib_trials_current``: gauges by ``namespace`` and
  ``status``, the type of each resource's last condition (``Unknown`` without conditions),
  computed from the controller's informer cache at every scrape.

Each controller process exports its own kind: the experiment controller the experiment
metrics, the trial controller the trial metrics.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sextant.store.informer import Informer
from sextant.store.interface import EventType

EXPERIMENT_CREATED = Counter("katib_experiment_created", "The total number of created experiments", ["namespace"])
EXPERIMENT_DELETED = Counter("katib_experiment_deleted", "The total number of deleted experiments", ["namespace"])
EXPERIMENT_SUCCEEDED = Counter("katib_experiment_succeeded", "The total number of succeeded experiments",
                               ["namespace"])
EXPERIMENT_FAILED = Counter("katib_experiment_failed", "The total number of failed experiments", ["namespace"])
TRIAL_CREATED = Counter("katib_trial_created", "The total number of created trials", ["namespace"])
TRIAL_DELETED = Counter("katib_trial_deleted", "The total number of deleted trials", ["namespace"])
TRIAL_SUCCEEDED = Counter("katib_trial_succeeded", "The total number of succeeded trials", ["namespace"])
TRIAL_FAILED = Counter("katib_trial_failed", "The total number of failed trials", ["namespace"])
TRIAL_METRICS_UNAVAILABLE = Counter("katib_trial_metrics_unavailable",
                                    "The total number of metrics unavailable trials", ["namespace"])

UNKNOWN = "Unknown"


def last_condition_type(resource: Any) -> str:
    conditions = resource.status.conditions
    return str(conditions[-1].type) if conditions else UNKNOWN


class CurrentCollector(Collector):
    """``<name>{namespace, status}``: how many resources of the informer's cache have each last
    condition type, counted when scraped."""

    def __init__(self, name: str, documentation: str, resources: Callable[[], Iterable[Any]]):
        self.name = name
        self.documentation = documentation
        self.resources = resources

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=["namespace", "status"])
        tally = Tally((r.metadata.namespace, last_condition_type(r)) for r in self.resources())
        for (namespace, status), count in sorted(tally.items()):
            family.add_metric([namespace, status], count)
        yield family


def _count_deletions(informer: Informer, counter: Counter) -> None:
    def on_event(event_type: EventType, resource: Any) -> None:
        if event_type == EventType.DELETED:
            counter.labels(resource.metadata.namespace).inc()

    informer.add_handler(on_event)


_CURRENT: dict[str, CurrentCollector] = {}


def _export_current(name: str, documentation: str, informer: Informer) -> None:
    """Registers the gauge once per process; a later controller (tests build several) takes
    over its source."""
    collector = _CURRENT.get(name)
    if collector is None:
        collector = _CURRENT[name] = CurrentCollector(name, documentation, informer.list)
        REGISTRY.register(collector)
    collector.resources = informer.list


def export_experiments(informer: Informer) -> None:
    """The experiment controller's gauge and deletion counter, from its Experiment informer."""
    disable_created_metrics()  # type: ignore[no-untyped-call]  # Katib's counters have no ``_created`` series
    _count_deletions(informer, EXPERIMENT_DELETED)
    _export_current("katib_experiments_current", "The number of current katib experiments in the cluster", informer)


def export_trials(informer: Informer) -> None:
    """The trial controller's gauge and deletion counter, from its Trial informer."""
    disable_created_metrics()  # type: ignore[no-untyped-call]
    _count_deletions(informer, TRIAL_DELETED)
    _export_current("katib_trials_current", "The number of current katib trials in the cluster", informer)
