"""Data for the Pareto-front plot of a multi-objective experiment (``static/plots/pareto.js``).

Every trial with a value for each objective is a point; the Pareto-optimal ones (computed by
``sextant.katib.pareto``, as the experiment status lists them) are named in ``front``, best first
on the primary objective. A single-objective experiment answers ``{"objectives": []}`` and the
page shows no Pareto card.
"""

from __future__ import annotations

from typing import Any

from sextant.katib import experiment_status, pareto
from sextant.resources.models import Experiment, Trial


def pareto_data(experiment: Experiment, trials: list[Trial]) -> dict[str, Any]:
    goals = pareto.objectives_of(experiment)
    finished = experiment_status.is_finished(experiment)
    if goals is None:
        return {"objectives": [], "finished": finished}
    names: list[str] = []
    values: dict[str, list[float]] = {g.name: [] for g in goals}
    parameters: list[str] = []
    for trial in sorted(trials, key=lambda t: t.metadata.name):
        row = [pareto.metric_value(experiment.spec.objective, trial.status.observation, g.name) for g in goals]
        numbers = [v for v in row if v is not None]
        if len(numbers) != len(goals):
            continue
        names.append(trial.metadata.name)
        for goal, value in zip(goals, numbers, strict=True):
            values[goal.name].append(value)
        parameters.append(", ".join(f"{a.name}={a.value}" for a in trial.spec.parameter_assignments))
    front = [t.metadata.name for t in pareto.pareto_trials(experiment, trials) or []]
    return {"objectives": [{"name": g.name, "direction": g.direction} for g in goals], "names": names,
            "values": values, "parameters": parameters, "front": front, "finished": finished}
