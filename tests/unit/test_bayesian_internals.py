"""bayesianoptimization internals: the GBRT wrapper on the pinned scikit-learn, the parameter
<-> skopt dimension mapping, and the trial wall time used by EIps/PIps."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import is_regressor
from skopt.learning import GradientBoostingQuantileRegressor

from services.suggestion.algorithms.bayesian import GBRTRegressor, _dim_for, _seconds
from services.suggestion.algorithms.search_space import Param
from sextant.api import api_pb2
from sextant.conformance import builders as b


def test_skopt_gbrt_alone_is_not_a_regressor_for_sklearn_but_the_wrapper_is():
    assert not is_regressor(GradientBoostingQuantileRegressor())  # the bug being worked around
    assert is_regressor(GBRTRegressor())


def test_gbrt_wrapper_predicts_mean_and_spread():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(40, 2))
    y = x[:, 0] * 3 + rng.normal(scale=0.1, size=40)
    model = GBRTRegressor(random_state=0).fit(x, y)
    mean, std = model.predict(x[:5], return_std=True)
    assert mean.shape == (5,) and std.shape == (5,)
    assert np.all(std >= 0)
    assert np.corrcoef(mean, y[:5])[0, 1] > 0.5


def _param(spec):
    return Param.from_spec(spec)


@pytest.mark.parametrize("spec,kind", [
    (b.parameter("x", "double", min="-1", max="1"), "real"),
    (b.parameter("lr", "double", min="0.0001", max="1", distribution="logUniform"), "real"),
    (b.parameter("d", "double", min="0", max="0.5", step="0.05"), "index"),
    (b.parameter("n", "int", min="2", max="20", step="3"), "index"),
    (b.parameter("units", "int", min="1", max="1024", distribution="logUniform"), "int"),
    (b.parameter("c", "categorical", values=["a", "b", "c"]), "cat"),
    (b.parameter("one", "categorical", values=["only"]), "const"),
    (b.parameter("fixed", "double", min="2", max="2"), "const"),
])
def test_dimension_kind_and_round_trip(spec, kind):
    p = _param(spec)
    dim = _dim_for(p)
    assert dim.kind == kind
    if kind == "const":
        assert p.check(dim.decode(None)) is None
        return
    space_dim = dim.skopt()
    for value in space_dim.rvs(n_samples=20, random_state=1):
        text = dim.decode(value)
        assert p.check(text) is None, text
        assert dim.encode(text) == value or abs(float(dim.encode(text)) - float(value)) < 1e-6


def test_log_uniform_double_keeps_its_prior_and_uniform_is_uniform():
    log_dim = _dim_for(_param(b.parameter("lr", "double", min="0.0001", max="1", distribution="logUniform")))
    lin_dim = _dim_for(_param(b.parameter("x", "double", min="0", max="1")))
    assert log_dim.skopt().prior == "log-uniform"
    assert lin_dim.skopt().prior == "uniform"  # Katib forces log-uniform on every double


def test_encode_rejects_values_outside_a_list_and_clips_numbers():
    cat = _dim_for(_param(b.parameter("c", "categorical", values=["a", "b"])))
    assert cat.encode("z") is None
    idx = _dim_for(_param(b.parameter("n", "int", min="0", max="10", step="5")))
    assert idx.encode("100") == 2 and idx.encode("-3") == 0


def test_trial_seconds():
    t = api_pb2.Trial()
    t.status.start_time = "2026-01-01T00:00:00Z"
    t.status.completion_time = "2026-01-01T00:02:30Z"
    assert _seconds(t) == 150.0
    assert _seconds(api_pb2.Trial()) == 1.0  # unknown -> 1 s, never 0 (its log is taken)
