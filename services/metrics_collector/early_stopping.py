"""Early-stopping rules as the collector enforces them (Katib's sidecar rules).

A rule ``name;value;comparison;startStep`` is met when the metric's value compares ``equal``,
``less`` or ``greater`` to ``value``. For the objective metric the best value seen so far
(max when maximizing, min when minimizing) is compared instead of the last one. A rule with
``startStep`` N ignores the first N values of its metric. A met rule is removed; when no rule
is left the trial must stop.
"""

from __future__ import annotations

from sextant.metric_lines import MetricLog

from .lazy_logger import log

COMPARISONS = ("equal", "less", "greater")


class StopRule:
    # A plain class: see MetricLog on why not a dataclass.
    __slots__ = ("name", "value", "comparison", "start_step")

    def __init__(self, name: str, value: float, comparison: str, start_step: int = 0):
        self.name, self.value, self.comparison, self.start_step = name, value, comparison, start_step

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StopRule) and (self.name, self.value, self.comparison, self.start_step) == \
            (other.name, other.value, other.comparison, other.start_step)

    def __repr__(self) -> str:
        return (f"StopRule(name={self.name!r}, value={self.value!r}, comparison={self.comparison!r}, "
                f"start_step={self.start_step!r})")

    @classmethod
    def parse(cls, text: str) -> StopRule:
        parts = text.split(";")
        if len(parts) != 4:
            raise ValueError(f"--stop-rule {text!r}: expected name;value;comparison;startStep")
        name, value, comparison, start = parts
        if comparison.lower() not in COMPARISONS:
            raise ValueError(f"--stop-rule {text!r}: comparison must be one of {', '.join(COMPARISONS)}")
        try:
            return cls(name, float(value), comparison.lower(), int(start or 0))
        except ValueError as err:
            raise ValueError(f"--stop-rule {text!r}: value must be a number and startStep an integer") from err

    def met_by(self, value: float) -> bool:
        if self.comparison == "equal":
            return value == self.value
        if self.comparison == "less":
            return value < self.value
        return value > self.value


class EarlyStopper:
    def __init__(self, rules: list[StopRule], objective: str, objective_type: str):
        self.rules = list(rules)
        self.objective = objective
        self.maximize = objective_type == "maximize"
        self.best: float | None = None
        self._countdown = {id(r): r.start_step for r in self.rules}

    def observe(self, item: MetricLog) -> bool:
        """Feeds one log; True once every rule has been met (the trial should stop)."""
        if not self.rules:
            return False
        try:
            value = float(item.value)
        except ValueError:
            return False
        if item.name == self.objective:
            if self.best is None or (value > self.best if self.maximize else value < self.best):
                self.best = value
            value = self.best
        for rule in list(self.rules):
            if rule.name != item.name:
                continue
            if self._countdown[id(rule)] > 0:
                self._countdown[id(rule)] -= 1
                continue
            if rule.met_by(value):
                self.rules.remove(rule)
        return not self.rules


def set_trial_early_stopped(address: str, trial: str, token: str | None = None,
                            timeout: float = 30.0) -> bool:
    """Calls EarlyStopping.SetTrialStatus so the trial gets its EarlyStopped condition."""
    # Imported here: grpc/protobuf cost ~0.15 s CPU at start-up, paid only by trials that stop early.
    from . import site_packages

    site_packages.ensure()
    import grpc

    from sextant.api import api_pb2, api_pb2_grpc
    from sextant.channel import open_channel

    channel = open_channel(address, token=token)
    try:
        api_pb2_grpc.EarlyStoppingStub(channel).SetTrialStatus(
            api_pb2.SetTrialStatusRequest(trial_name=trial), timeout=timeout,
            wait_for_ready=True)
        return True
    except grpc.RpcError as err:
        log.error("SetTrialStatus failed", extra={"trial": trial, "code": err.code().name,
                                                  "detail": err.details()})
        return False
    finally:
        channel.close()
