"""Restart equivalence: a fresh service process given the same trials answers validly, without
repeating any trial's point, and (for algorithms whose answer depends only on the request) exactly
as before; also for experiments declaring a second objective (``sextant.io/objectives``)."""

from __future__ import annotations

import signal
from collections.abc import Callable

from sextant import objectives
from sextant.algorithm_registry import Registry
from sextant.api import api_pb2
from sextant.conformance import builders as b
from sextant.conformance.checks import assignment_problems

from .suggestion_servers import BUILTIN, get, subprocess_server

Condition = api_pb2.TrialStatus.TrialConditionType
SAME_ANSWER = {"random", "grid", "sobol", "cmaes", "tpe", "multivariate-tpe", "nsga2", "mo-tpe"}


def _space(algorithm):
    if algorithm == "grid":
        return [b.parameter("lr", "double", min="0.01", max="0.1", step="0.01"),
                b.parameter("layers", "int", min="1", max="6"),
                b.parameter("opt", "categorical", values=["sgd", "adam"])]
    return b.mixed_space()


def _cost(point: dict[str, str]) -> float:
    """A second objective, different from ``synthetic_value`` (the names shift its phases)."""
    return b.synthetic_value({f"{k}__": v for k, v in point.items()})


def _multi_objective_experiment(algorithm: str) -> api_pb2.Experiment:
    """An experiment declaring ``cost`` as a second objective (annotation + additionalMetricNames)
    as Sextant's suggestion controller sends it: the declaration goes along as a setting only
    to services whose registry entry says ``multiObjective: true``; others see Katib's fields."""
    entry = Registry.default().algorithm(algorithm)
    assert entry is not None
    settings = {"random_state": "11"}
    if entry.multi_objective:
        settings[objectives.SETTING] = "cost=minimize"
    exp = b.experiment(f"restart-mo-{algorithm}", algorithm, b.mixed_space(), settings=settings)
    exp.spec.objective.additional_metric_names.append("cost")
    return exp


def test_a_fresh_process_continues_every_algorithm_without_repeats():
    _continues_without_repeats({a: b.experiment(f"restart-{a}", a, _space(a), settings={"random_state": "11"})
                                for a in BUILTIN})


def test_multi_objective_experiments_continue_without_repeats():
    experiments = {a: _multi_objective_experiment(a) for a in ("nsga2", "mo-tpe", "sobol", "random")}
    assert objectives.SETTING in {s.name for s in experiments["nsga2"].spec.algorithm.algorithm_settings}
    assert objectives.SETTING not in {s.name for s in experiments["sobol"].spec.algorithm.algorithm_settings}
    _continues_without_repeats(experiments, extra={"cost": _cost})


def _continues_without_repeats(experiments: dict[str, api_pb2.Experiment],
                               extra: dict[str, Callable[[dict[str, str]], float]] | None = None) -> None:
    """Drives each experiment for six rounds (the last one partly pending), stops the process,
    and asks a fresh one with the same history: valid new points, none repeated, and for
    SAME_ANSWER algorithms exactly the points the first process would have given."""
    histories: dict[str, list[api_pb2.Trial]] = {}
    answers: dict[str, list[dict[str, str]]] = {}
    with subprocess_server() as (_address, stub, proc):
        for algorithm, exp in experiments.items():
            trials: list[api_pb2.Trial] = []
            for r in range(6):
                reply = get(stub, exp, trials, 3)
                for i, pa in enumerate(reply.parameter_assignments):
                    point = b.assignment(pa)
                    done = r < 5 or i == 0  # the last round stays pending
                    trials.append(b.trial(f"{exp.name}-{r}-{i}", point,
                                          condition=Condition.SUCCEEDED if done else Condition.RUNNING,
                                          value=b.synthetic_value(point) if done else None,
                                          extra_metrics={m: f(point) for m, f in (extra or {}).items()} if done
                                          else None))
            histories[algorithm] = trials
            answers[algorithm] = [b.assignment(pa) for pa in get(stub, exp, trials, 4).parameter_assignments]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0  # graceful stop
    with subprocess_server() as (_address, stub, _proc):
        for algorithm, exp in experiments.items():
            trials = histories[algorithm]
            fresh = [b.assignment(pa) for pa in get(stub, exp, trials, 4).parameter_assignments]
            assert len(fresh) == 4
            taken = {tuple(sorted(b.assignment(t.spec.parameter_assignments).items())) for t in trials}
            keys = [tuple(sorted(p.items())) for p in fresh]
            assert len(set(keys)) == 4, algorithm
            assert not taken & set(keys), algorithm
            for p in fresh:
                assert assignment_problems(exp, p) == [], algorithm
            if algorithm in SAME_ANSWER:
                assert fresh == answers[algorithm], algorithm


def test_single_algorithm_process_and_bad_flag():
    with subprocess_server("--algorithm", "sobol") as (_address, stub, _proc):
        exp = b.experiment("one", "sobol", b.mixed_space())
        assert len(get(stub, exp, [], 2).parameter_assignments) == 2
    import subprocess
    import sys

    from .suggestion_servers import ROOT

    out = subprocess.run([sys.executable, "-m", "services.suggestion.algorithms", "--algorithm", "nope",
                          "--port", "0"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "unknown or unavailable algorithm 'nope'" in out.stderr
