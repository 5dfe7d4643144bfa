"""SearchSpace: Katib's parsing defaults, formatting, feasibility, grid, unit cube, trial filters."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.suggestion.algorithms.search_space import (
    Param,
    SearchSpace,
    SpaceError,
    completed_trials,
    objective_sign,
    pending_trials,
)
from sextant.api import api_pb2
from sextant.conformance import builders as b
from sextant.conformance.checks import value_problem

Condition = api_pb2.TrialStatus.TrialConditionType


def space(*params) -> SearchSpace:
    return SearchSpace.from_experiment(b.experiment("e", "random", params))


def test_int_step_defaults_to_one_and_double_step_stays_empty():
    s = space(b.parameter("n", "int", min="1", max="4"), b.parameter("x", "double", min="0", max="1"))
    assert s.by_name("n").step == 1
    assert s.by_name("x").step is None
    assert s.by_name("n").grid_values() == ["1", "2", "3", "4"]


def test_double_grid_needs_a_step_and_drops_points_past_max():
    with pytest.raises(SpaceError, match="x"):
        space(b.parameter("x", "double", min="0", max="1")).by_name("x").grid_values()
    p = space(b.parameter("x", "double", min="0.1", max="0.35", step="0.1")).by_name("x")
    assert p.grid_values() == ["0.1", "0.2", "0.3"]  # no float noise like 0.30000000000000004


@pytest.mark.parametrize("params, message", [
    ([b.parameter("x", "double", min="2", max="1")], "min '2' > max '1'"),
    ([b.parameter("x", "double", min="a", max="1")], "must be a number"),
    ([b.parameter("x", "int", min="1.5", max="3")], "base-10 integer"),
    # Numbers are read with Go's strconv rules, as at admission (issue 21).
    ([b.parameter("x", "int", min="0", max="1_0")], "base-10 integer"),
    ([b.parameter("x", "int", min="0", max="\uff11\uff10")], "base-10 integer"),
    ([b.parameter("x", "int", min="-9223372036854775809", max="0")], "64-bit integer"),
    ([b.parameter("x", "int", min="0", max="9007199254740993")], "2\\^53"),
    ([b.parameter("x", "double", min="-1e308", max="1e308")], "not a finite double"),
    ([b.parameter("x", "double", min="0", max="1", step="1e-300")], "step must be at most"),
    ([b.parameter("c", "categorical")], "list must not be empty"),
    ([b.parameter("x", "double", min="0", max="1", step="-1")], "step must be > 0"),
    ([b.parameter("x", "int", min="0", max="1"), b.parameter("x", "int", min="0", max="1")], "duplicated"),
])
def test_bad_specs_name_the_parameter_and_rule(params, message):
    with pytest.raises(SpaceError, match=message):
        space(*params)


def test_formatting_is_katibs():
    s = space(b.parameter("n", "int", min="0", max="10", step="2"),
              b.parameter("x", "double", min="0", max="1"),
              b.parameter("c", "discrete", values=["1", "10"]))
    assert s.by_name("n").format(3.2) == "4"
    assert s.by_name("n").format(11) == "10"
    assert s.by_name("x").format(1) == "1.0"
    assert s.by_name("x").format(-3) == "0.0"
    assert s.by_name("c").format("10") == "10"
    with pytest.raises(ValueError):
        s.by_name("c").format("2")


@pytest.mark.parametrize("ptype, kw, good, bad", [
    ("int", dict(min="1", max="9", step="2"), ["1", "9", "5"], ["2", "0", "11", "3.0", "x"]),
    ("double", dict(min="0.5", max="1.5", step="0.25"), ["0.5", "1.25", "1.5"], ["0.6", "2.0", "nan"]),
    ("double", dict(min="-1", max="1"), ["-1.0", "0.3", "1"], ["1.01", "inf", "abc"]),
    ("categorical", dict(values=["a", "b"]), ["a", "b"], ["c", "A", ""]),
])
def test_check_accepts_feasible_and_rejects_the_rest(ptype, kw, good, bad):
    p = space(b.parameter("p", ptype, **kw)).params[0]
    for v in good:
        assert p.check(v) is None, v
    for v in bad:
        assert p.check(v) is not None, v


def test_check_names_missing_and_unknown_parameters():
    s = space(b.parameter("n", "int", min="0", max="3"))
    assert s.check({"m": "1"}) == ["unknown parameter m", "missing parameter n"]


def test_keys_compare_numbers_not_spelling():
    s = space(b.parameter("x", "double", min="0", max="2"), b.parameter("c", "categorical", values=["1", "1.0"]))
    assert s.key({"x": "1", "c": "1"}) == s.key({"x": "1.0", "c": "1"})
    assert s.key({"x": "1", "c": "1"}) != s.key({"x": "1", "c": "1.0"})


def test_grid_order_and_size():
    s = space(b.parameter("a", "int", min="1", max="2"), b.parameter("c", "categorical", values=["x", "y", "z"]))
    points = list(s.grid())
    assert s.grid_size == 6 == len(points)
    assert points[0] == {"a": "1", "c": "x"} and points[1] == {"a": "1", "c": "y"}
    assert len({tuple(p.values()) for p in points}) == 6


_param = st.one_of(
    st.builds(lambda lo, w, step, dist: b.parameter("p", "double", min=repr(lo), max=repr(lo + w),
                                                     step=step, distribution=dist),
              st.floats(-100, 100), st.floats(0, 100), st.sampled_from(["", "0.1", "0.25", "3"]),
              st.sampled_from(["", "uniform", "logUniform", "normal", "logNormal"])),
    st.builds(lambda lo, w, step, dist: b.parameter("p", "int", min=str(lo), max=str(lo + w), step=step,
                                                     distribution=dist),
              st.integers(-50, 50), st.integers(0, 50), st.sampled_from(["", "1", "3"]),
              st.sampled_from(["", "logUniform", "normal"])),
    st.builds(lambda vals: b.parameter("p", "categorical", values=vals),
              st.lists(st.text(min_size=1, max_size=4), min_size=1, max_size=5, unique=True)),
)


@settings(max_examples=200, deadline=None)
@given(_param, st.floats(-0.5, 1.5), st.integers(0, 2**31))
def test_every_produced_value_is_feasible(spec, u, seed):
    import numpy as np

    p = Param.from_spec(spec)
    for value in (p.from_unit(u), p.sample(np.random.default_rng(seed))):
        assert p.check(value) is None
        assert value_problem(spec, value) is None  # the conformance kit agrees
        if p.numeric:
            assert 0.0 <= p.to_unit(value) <= 1.0 + 1e-9


def test_trial_filters_follow_katib():
    exp = b.experiment("e", "random", [b.parameter("x", "double", min="0", max="1")], maximize=True)
    trials = [
        b.trial("ok", {"x": "0.1"}, value=1.5),
        b.trial("early", {"x": "0.2"}, condition=Condition.EARLYSTOPPED, value="2"),
        b.trial("failed", {"x": "0.3"}, condition=Condition.FAILED, value=9),
        b.trial("no-metric", {"x": "0.4"}),
        b.trial("unavailable", {"x": "0.5"}, value="unavailable"),
        b.trial("other-metric", {"x": "0.6"}, metric="accuracy", value=1),
        b.trial("running", {"x": "0.7"}, condition=Condition.RUNNING),
        b.trial("created", {"x": "0.8"}, condition=Condition.CREATED),
    ]
    assert [(t.name, v) for t, v in completed_trials(exp, trials)] == [("ok", 1.5), ("early", 2.0)]
    assert [t.name for t in pending_trials(trials)] == ["running", "created"]
    assert objective_sign(exp) == -1.0
    assert math.isclose(objective_sign(b.experiment("m", "random", [])), 1.0)


def test_sample_untaken_avoids_taken_points_and_gives_up_after_the_redraws(monkeypatch):
    import numpy as np

    s = space(b.parameter("n", "int", min="1", max="3"))
    taken = {s.key({"n": "1"}), s.key({"n": "2"})}
    for seed in range(20):
        assert s.sample_untaken(np.random.default_rng(seed), taken) == {"n": "3"}
    # every point taken: after the redraws it still returns a (taken) point rather than looping
    taken.add(s.key({"n": "3"}))
    draws = []
    original = SearchSpace.sample
    monkeypatch.setattr(SearchSpace, "sample", lambda self, rng: draws.append(1) or original(self, rng))
    assert s.key(s.sample_untaken(np.random.default_rng(0), taken, redraws=5)) in taken
    assert len(draws) == 6  # the first draw and five redraws
