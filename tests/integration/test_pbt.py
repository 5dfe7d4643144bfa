"""pbt over real gRPC on loopback: Katib's settings errors, generations and parents in labels,
checkpoint directories handed from parent to child, and state rebuilt from the request."""

from __future__ import annotations

import grpc
import pytest

from services.suggestion.algorithms.pbt import GENERATION_LABEL, PARENT_LABEL
from sextant.api import api_pb2
from sextant.conformance import Target, run_checks
from sextant.conformance import builders as b

from .suggestion_servers import get, in_process, validate

Condition = api_pb2.TrialStatus.TrialConditionType
SETTINGS = {"suggestion_trial_dir": "/var/log/katib/checkpoints/", "n_population": "5",
            "truncation_threshold": "0.2", "random_state": "7"}


@pytest.fixture(scope="module")
def stub():
    with in_process() as (_address, stub, _server):
        yield stub


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SEXTANT_STATE_DIR", str(tmp_path))
    return tmp_path


def _exp(name="pbt-exp", **settings):
    return b.experiment(name, "pbt", [b.parameter("lr", "double", min="0.0001", max="0.02"),
                                      b.parameter("opt", "categorical", values=["sgd", "adam", "rms"])],
                        settings={**SETTINGS, **settings}, maximize=True, metric="acc")


def _as_trials(reply, condition=Condition.RUNNING, values=None):
    out = []
    for i, pa in enumerate(reply.parameter_assignments):
        value = values[i] if values is not None else None
        t = b.trial(pa.trial_name, b.assignment(pa), condition=condition, metric="acc", value=value)
        t.spec.labels.update(pa.labels)
        out.append(t)
    return out


@pytest.mark.parametrize("settings, message", [
    ({"n_population": None, "truncation_threshold": None}, "Required params missing: n_population, "
                                                            "truncation_threshold"),
    ({"n_population": "4"}, "Param(n_population) should be >= 5"),
    ({"n_population": "many"}, "failed to validate n_population(many)"),
    ({"truncation_threshold": "1.5"}, "Param(truncation_threshold) should be between 0 and 1, inclusive"),
    ({"resample_probability": "-0.1"}, "Param(resample_probability) should be null to perturb at 0.8 or 1.2, "
                                       "or be between 0 and 1, inclusive, to resample"),
    ({"random_state": "-1"}, "random_state should be great or equal than zero"),
])
def test_katibs_messages_for_bad_settings(stub, data_dir, settings, message):
    exp = _exp()
    del exp.spec.algorithm.algorithm_settings[:]
    for k, v in {**SETTINGS, **settings}.items():
        if v is not None:
            exp.spec.algorithm.algorithm_settings.add(name=k, value=v)
    for call in (lambda: validate(stub, exp), lambda: get(stub, exp)):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert message in err.value.details()


def test_first_generation_is_random_with_labels_names_and_empty_checkpoints(stub, data_dir):
    exp = _exp()
    validate(stub, exp)
    reply = get(stub, exp, count=5)
    assert len({tuple(sorted(b.assignment(pa).items())) for pa in reply.parameter_assignments}) == 5
    for pa in reply.parameter_assignments:
        assert pa.trial_name.startswith("pbt-exp-") and len(pa.trial_name) == len("pbt-exp-") + 36
        assert dict(pa.labels) == {GENERATION_LABEL: "0"}
        assert (data_dir / "pbt-exp" / pa.trial_name).is_dir()


def test_next_generation_exploits_the_best_and_explores_the_rest_from_their_checkpoints(stub, data_dir):
    exp = _exp(truncation_threshold="0.4")
    first = get(stub, exp, count=5)
    values = [0.1, 0.2, 0.5, 0.8, 0.9]
    gen0 = _as_trials(first, Condition.SUCCEEDED, values)
    for t, v in zip(gen0, values, strict=True):
        (data_dir / "pbt-exp" / t.name / "model.txt").write_text(f"{v}")
    by_name = {t.name: (t, v) for t, v in zip(gen0, values, strict=True)}
    reply = get(stub, exp, gen0, count=20)
    exploited = explored = 0
    for pa in reply.parameter_assignments:
        assert pa.labels[GENERATION_LABEL] == "1"
        parent, parent_value = by_name[pa.labels[PARENT_LABEL]]
        # the child starts from a copy of its parent's checkpoint
        assert (data_dir / "pbt-exp" / pa.trial_name / "model.txt").read_text() == f"{parent_value}"
        child = b.assignment(pa)
        if child == b.assignment(parent.spec.parameter_assignments):
            exploited += 1
            assert parent_value >= 0.8  # only the best quantile is copied
        else:
            explored += 1
            lr, parent_lr = float(child["lr"]), float(b.assignment(parent.spec.parameter_assignments)["lr"])
            opts = ["sgd", "adam", "rms"]
            moved = (opts.index(child["opt"]) - opts.index(b.assignment(parent.spec.parameter_assignments)["opt"])) % 3
            assert lr in (pytest.approx(min(0.02, parent_lr * 0.8)), pytest.approx(min(0.02, parent_lr * 1.2)))
            assert moved in (1, 2)  # a neighbour in the list
    assert exploited > 0 and explored > 0


def test_a_generation_is_complete_once_n_population_members_finished(stub, data_dir):
    exp = _exp()
    gen0 = _as_trials(get(stub, exp, count=5), Condition.SUCCEEDED, [1, 2, 3, 4, 5])
    gen0[4].status.condition = Condition.FAILED
    (extra,) = _as_trials(get(stub, exp, gen0, count=1))  # four finished: generation 0 grows
    assert extra.spec.labels[GENERATION_LABEL] == "0" and PARENT_LABEL not in extra.spec.labels
    gen0.append(extra)
    assert get(stub, exp, gen0, count=1).parameter_assignments[0].labels[GENERATION_LABEL] == "0"
    extra.status.condition = Condition.SUCCEEDED
    extra.status.observation.metrics.add(name="acc", value="6")
    nxt = get(stub, exp, gen0, count=3).parameter_assignments
    assert [pa.labels[GENERATION_LABEL] for pa in nxt] == ["1", "1", "1"]
    finished = {t.name for t in gen0 if t.status.condition == Condition.SUCCEEDED}
    assert all(pa.labels[PARENT_LABEL] in finished for pa in nxt)
    # generation 1 is not complete yet: more of it, still derived from generation 0
    gen1 = _as_trials(get(stub, exp, gen0, count=3))
    more = get(stub, exp, gen0 + gen1, count=2).parameter_assignments
    assert [pa.labels[GENERATION_LABEL] for pa in more] == ["1", "1"]
    assert all(pa.labels[PARENT_LABEL] in finished for pa in more)


def test_a_restarted_service_gives_the_same_answer(stub, data_dir):
    exp = _exp(name="pbt-restart")
    gen0 = _as_trials(get(stub, exp, count=5), Condition.SUCCEEDED, [1, 2, 3, 4, 5])
    before = get(stub, exp, gen0, count=4)
    with in_process() as (_address, fresh, _server):
        after = get(fresh, exp, gen0, count=4)
    assert after == before


def test_conformance_kit(data_dir):
    with in_process() as (address, _stub, _server):
        results = run_checks(Target(address, "pbt", settings=SETTINGS))
    assert [f"{r.name}: {r.detail}" for r in results if not r.passed] == []
    assert {r.name for r in results if not r.skipped} >= {"health", "validate_invalid", "request_counts",
                                                           "feasible_values", "many_experiments",
                                                           "fresh_history"}


def test_resample_probability_keeps_or_redraws_values(stub, data_dir):
    values = [0.1, 0.2, 0.5, 0.8, 0.9]
    for probability, same in (("0", True), ("1", False)):
        exp = _exp(name=f"pbt-resample-{probability}", resample_probability=probability)
        gen0 = _as_trials(get(stub, exp, count=5), Condition.SUCCEEDED, values)
        parents = {t.name: b.assignment(t.spec.parameter_assignments) for t in gen0}
        best = {t.name for t, v in zip(gen0, values, strict=True) if v >= 0.9}
        for pa in get(stub, exp, gen0, count=12).parameter_assignments:
            parent = pa.labels[PARENT_LABEL]
            if parent in best and b.assignment(pa) == parents[parent]:
                continue  # an exploit copy (or an explore that kept everything)
            assert (b.assignment(pa)["lr"] == parents[parent]["lr"]) is same
