"""What every early-stopping algorithm provides to the EarlyStopping servicer.

An algorithm is an object with a ``name`` and two methods, both free of I/O:

* ``validation_errors(spec)``: the messages for a bad ``EarlyStoppingSpec`` (empty = valid);
  the servicer answers INVALID_ARGUMENT with them joined by ``"; "``.
* ``rules(experiment, trials, read)``: the rules every new trial gets. ``read(names)`` returns,
  per trial name, the numeric values of the objective metric in the order they were reported
  (trials without any numeric value are left out). The servicer reads them from the DB manager
  named in the request and keeps those of finished trials, whose logs no longer change; so the
  answer depends only on the request and the stored logs, and a restarted service (or one
  serving many experiments) gives the same answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sextant.api import api_pb2

ReadValues = Callable[[list[str]], dict[str, list[float]]]

# Trials whose observation logs are final (a new rule request never sees them change).
FINISHED = frozenset({api_pb2.TrialStatus.SUCCEEDED, api_pb2.TrialStatus.EARLYSTOPPED})


class InvalidEarlyStoppingSettings(ValueError):
    pass


class EarlyStoppingAlgorithm(Protocol):
    name: str

    def validation_errors(self, spec: api_pb2.EarlyStoppingSpec) -> list[str]: ...

    def rules(self, experiment: api_pb2.Experiment, trials: list[api_pb2.Trial],
              read: ReadValues) -> list[api_pb2.EarlyStoppingRule]: ...
