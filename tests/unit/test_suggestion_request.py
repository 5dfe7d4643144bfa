"""GetSuggestions request building (what Katib's controller sends)."""

from __future__ import annotations

from services.suggestion.controller import grpc_requests as rb
from sextant.api import api_pb2
from sextant.resources.models import (
    AlgorithmSetting,
    AlgorithmSpec,
    Condition,
    EarlyStoppingSpec,
    Experiment,
    ExperimentSpec,
    FeasibleSpace,
    Metric,
    MetricStrategy,
    ObjectiveSpec,
    ObjectMeta,
    Observation,
    ParameterAssignment,
    ParameterSpec,
    Suggestion,
    SuggestionSpec,
    SuggestionStatus,
    Trial,
    TrialSpec,
    TrialStatus,
)

OBJ = ObjectiveSpec(type="minimize", objective_metric_name="loss", additional_metric_names=["acc", "lat"],
                    metric_strategies=[MetricStrategy(name="loss", value="min"),
                                       MetricStrategy(name="acc", value="max"),
                                       MetricStrategy(name="lat", value="latest")])


def exp(goal=None):
    return Experiment(
        metadata=ObjectMeta(name="e1", namespace="ns"),
        spec=ExperimentSpec(
            parameters=[
                ParameterSpec(name="lr", parameter_type="double",
                              feasible_space=FeasibleSpace(min="0.01", max="0.1", distribution="logUniform")),
                ParameterSpec(name="opt", parameter_type="categorical",
                              feasible_space=FeasibleSpace(list=["sgd", "adam"])),
                ParameterSpec(name="n", parameter_type="int",
                              feasible_space=FeasibleSpace(min="1", max="5", step="2", distribution="unknown")),
            ],
            objective=OBJ.model_copy(update={"goal": goal}),
            algorithm=AlgorithmSpec(algorithm_name="random",
                                    algorithm_settings=[AlgorithmSetting(name="seed", value="1"),
                                                        AlgorithmSetting(name="k", value="a")]),
            early_stopping=EarlyStoppingSpec(algorithm_name="medianstop"),
            parallel_trial_count=2,
            max_trial_count=9,
        ),
    )


def trial(name, conds=(), metrics=None, start=None, completion=None):
    return Trial(
        metadata=ObjectMeta(name=name, namespace="ns"),
        spec=TrialSpec(objective=OBJ, parameter_assignments=[ParameterAssignment(name="lr", value="0.05")]),
        status=TrialStatus(
            conditions=[Condition(type=t, status=s) for t, s in conds],
            observation=Observation(metrics=[Metric(name=n, min=a, max=b, latest=c) for n, a, b, c in metrics])
            if metrics else None,
            start_time=start, completion_time=completion,
        ),
    )


def sugg(requests=5, count=2, settings=()):
    return Suggestion(metadata=ObjectMeta(name="e1", namespace="ns"),
                      spec=SuggestionSpec(algorithm=AlgorithmSpec(algorithm_name="random"), requests=requests),
                      status=SuggestionStatus(suggestion_count=count,
                                              algorithm_settings=[AlgorithmSetting(name=k, value=v)
                                                                  for k, v in settings]))


def test_experiment_conversion_fields():
    msg = rb.experiment_message(exp(goal=0.2))
    s = msg.spec
    assert msg.name == "e1"
    lr, opt, n = s.parameter_specs.parameters
    assert (lr.parameter_type, lr.feasible_space.distribution, lr.feasible_space.min) == (
        api_pb2.DOUBLE, api_pb2.LOG_UNIFORM, "0.01")
    assert list(opt.feasible_space.list) == ["sgd", "adam"] and opt.parameter_type == api_pb2.CATEGORICAL
    assert n.feasible_space.step == "2" and n.feasible_space.distribution == api_pb2.DISTRIBUTION_UNSPECIFIED
    assert s.objective.type == api_pb2.MINIMIZE and s.objective.goal == 0.2
    assert list(s.objective.additional_metric_names) == ["acc", "lat"]
    assert (s.parallel_trial_count, s.max_trial_count) == (2, 9)
    assert s.early_stopping.algorithm_name == "medianstop"


def test_settings_overlay_replaces_and_appends():
    req = rb.suggestions_request(exp(), sugg(settings=[("k", "b"), ("state", "x")]), [])
    settings = [(a.name, a.value) for a in req.experiment.spec.algorithm.algorithm_settings]
    assert settings == [("seed", "1"), ("k", "b"), ("state", "x")]
    # validation uses the experiment's own settings
    v = rb.validate_request(exp())
    assert [(a.name, a.value) for a in v.experiment.spec.algorithm.algorithm_settings] == [("seed", "1"), ("k", "a")]


def test_request_numbers():
    req = rb.suggestions_request(exp(), sugg(requests=5, count=2), [])
    assert (req.current_request_number, req.total_request_number) == (3, 5)


def test_trial_filter_and_last_condition():
    trials = [
        trial("a"),  # no conditions → CREATED
        trial("b", [("Created", "True"), ("Running", "True")]),
        trial("c", [("Created", "True"), ("Running", "False"), ("Succeeded", "True")],
              metrics=[("loss", "0.1", "0.5", "0.3")]),
        trial("d", [("Created", "True"), ("MetricsUnavailable", "True")]),
        trial("e", [("Created", "True"), ("EarlyStopped", "True")]),  # no observation → excluded
        trial("f", [("Created", "True"), ("EarlyStopped", "True")], metrics=[("loss", "1", "2", "1.5")]),
        trial("g", [("Created", "True"), ("Weird", "True")]),
        trial("h", [("Created", "True"), ("Killed", "True")]),
    ]
    msgs = {t.name: t for t in rb.trial_messages(trials)}
    assert sorted(msgs) == ["a", "b", "c", "f", "g", "h"]
    TS = api_pb2.TrialStatus
    assert msgs["a"].status.condition == TS.CREATED
    assert msgs["b"].status.condition == TS.RUNNING
    assert msgs["c"].status.condition == TS.SUCCEEDED
    assert msgs["f"].status.condition == TS.EARLYSTOPPED
    assert msgs["g"].status.condition == TS.UNKNOWN
    assert msgs["h"].status.condition == TS.KILLED
    assert msgs["c"].spec.parameter_assignments.assignments[0].value == "0.05"


def test_metric_values_by_strategy_and_times():
    t = trial("c", [("Succeeded", "True")],
              metrics=[("loss", "unavailable", "unavailable", "0.4"), ("acc", "0.1", "0.9", "0.5"),
                       ("lat", "1", "3", "2"), ("other", "1", "2", "3")],
              start="2024-03-01T10:20:30.123456Z", completion="2024-03-01T11:00:00+00:00")
    m = rb.trial_message(t)
    values = {x.name: x.value for x in m.status.observation.metrics}
    assert values == {"loss": "0.4", "acc": "0.9", "lat": "2", "other": ""}
    assert m.status.start_time == "2024-03-01T10:20:30Z"
    assert m.status.completion_time == "2024-03-01T11:00:00Z"
    assert rb.trial_message(trial("x")).status.completion_time == ""


def test_comparison_mapping():
    assert rb.comparison_name(api_pb2.LESS) == "less"
    assert rb.comparison_name(api_pb2.GREATER) == "greater"
    assert rb.comparison_name(api_pb2.UNKNOWN_COMPARISON) == "equal"


def test_recorded_assignments_without_trials_are_sent_as_pending():
    from sextant.resources.models import TrialAssignment

    s = sugg(requests=4, count=3)
    s.status.suggestions = [
        TrialAssignment(name=n, parameter_assignments=[ParameterAssignment(name="lr", value=v)])
        for n, v in (("e1-a", "0.02"), ("e1-b", "0.03"), ("e1-c", "0.04"))
    ]
    existing = [trial("e1-a", [("Created", "True"), ("MetricsUnavailable", "True")])]
    req = rb.suggestions_request(exp(), s, existing)
    sent = {t.name: t for t in req.trials}
    # e1-a exists (and is filtered out as Katib does); the two others are pending, in order.
    assert [t.name for t in req.trials] == ["e1-b", "e1-c"]
    assert sent["e1-b"].status.condition == api_pb2.TrialStatus.CREATED
    assert sent["e1-c"].spec.parameter_assignments.assignments[0].value == "0.04"
    assert sent["e1-c"].spec.objective.objective_metric_name == "loss"


def test_declared_objectives_go_only_to_multi_objective_services():
    e = exp()
    e.metadata.annotations["sextant.io/objectives"] = "acc=maximize"
    plain = rb.suggestions_request(e, sugg(), [])
    assert "sextant.io/objectives" not in {a.name for a in plain.experiment.spec.algorithm.algorithm_settings}
    for msg in (rb.suggestions_request(e, sugg(), [], with_objectives=True).experiment,
                rb.validate_request(e, with_objectives=True).experiment):
        settings = [(a.name, a.value) for a in msg.spec.algorithm.algorithm_settings]
        assert settings == [("seed", "1"), ("k", "a"), ("sextant.io/objectives", "acc=maximize")]
    # a single-objective experiment sends nothing extra, whatever the service
    single = rb.validate_request(exp(), with_objectives=True).experiment
    assert [a.name for a in single.spec.algorithm.algorithm_settings] == ["seed", "k"]
