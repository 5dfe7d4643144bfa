"""UpdateStatus validates only what changed (sextant/store/normalize.py): for any status a
client may send, the result (or the error) must be exactly what validating the whole document
gives."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sextant.resources import admit_experiment
from sextant.resources.loading import load_document
from sextant.resources.models import Suggestion, Trial, to_doc
from sextant.store.interface import Invalid
from sextant.store.normalize import full_status, normalize_status

EXPERIMENT_YAML = Path(__file__).parents[1] / "data" / "experiments" / "valid" / "algo-tpe.yaml"


def _suggestion(n: int) -> dict:
    return to_doc(Suggestion.model_validate({
        "metadata": {"name": "s", "namespace": "default"},
        "spec": {"algorithm": {"algorithmName": "random"}, "requests": n},
        "status": {"suggestionCount": n, "startTime": "2024-01-01T00:00:00Z",
                   "suggestions": [{"name": f"t{i}", "parameterAssignments": [{"name": "x", "value": str(i)}],
                                    "labels": {"a": "b"}} for i in range(n)],
                   "conditions": [{"type": "Created", "reason": "r", "message": "m"},
                                  {"type": "Running", "status": "True", "lastUpdateTime": "2024-01-01T00:00:00Z"}]},
    }))


def _trial() -> dict:
    return to_doc(Trial.model_validate({
        "metadata": {"name": "t", "namespace": "default"},
        "status": {"conditions": [{"type": "Created"}],
                   "observation": {"metrics": [{"name": "m", "latest": "1"}]}},
    }))


def _experiment() -> dict:
    doc = load_document(EXPERIMENT_YAML.read_text())
    doc["metadata"] = {"name": "e", "namespace": "default"}
    doc["status"] = {"succeededTrialList": ["a", "b"], "trials": 2, "trialsSucceeded": 2,
                     "conditions": [{"type": "Created"}, {"type": "Running"}]}
    return to_doc(admit_experiment(doc))


STORED = {"Suggestion": _suggestion(6), "Trial": _trial(), "Experiment": _experiment()}

VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.just(1.0), st.text(max_size=3),
                   st.just([]), st.just({}), st.just([{"name": "n"}]), st.just([{"type": "T"}]),
                   st.just({"name": "x", "value": "1"}))
ITEMS = st.one_of(st.just({"name": "new", "parameterAssignments": [{"name": "x", "value": "9"}]}),
                  st.just({"type": "Succeeded", "status": "True", "extraField": 1}),
                  st.just({"name": 5}), st.just("not an object"), st.just({"type": "Failed", "reason": None}))


@st.composite
def edits(draw, kind: str):
    """A status as a controller might send it: the stored one with a few edits."""
    status = copy.deepcopy(STORED[kind]["status"])
    keys = sorted(status) + ["startTime", "start_time", "suggestionCount", "trials", "unknownField",
                             "conditions", "suggestions", "completionTime", "observation"]
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(keys))
        action = draw(st.sampled_from(["set", "delete", "append", "replace-item", "drop-item"]))
        value = status.get(key)
        if action == "set":
            status[key] = draw(VALUES)
        elif action == "delete":
            status.pop(key, None)
        elif isinstance(value, list) and action == "append":
            value.append(draw(ITEMS))
        elif isinstance(value, list) and value and action == "replace-item":
            value[draw(st.integers(0, len(value) - 1))] = draw(ITEMS)
        elif isinstance(value, list) and value and action == "drop-item":
            value.pop(0)
    return status


def _outcome(fn):
    try:
        return "ok", fn()
    except Invalid as err:
        return "invalid", err.errors


@pytest.mark.parametrize("kind", sorted(STORED))
def test_same_result_as_validating_everything(kind):
    stored = STORED[kind]

    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(edits(kind))
    def check(status):
        before = copy.deepcopy(stored)
        sent = copy.deepcopy(status)
        fast = _outcome(lambda: normalize_status(stored, status))
        full = _outcome(lambda: full_status({**stored, "status": status}))
        assert fast == full
        assert stored == before and status == sent  # neither input is modified

    check()


def test_unchanged_parts_are_reused_and_changed_items_validated():
    stored = STORED["Suggestion"]
    status = copy.deepcopy(stored["status"])
    status["suggestions"].append({"name": "t6", "parameterAssignments": [{"name": "x", "value": "6"}]})
    out = normalize_status(stored, status)
    assert out["suggestions"][0] is stored["status"]["suggestions"][0]  # not validated again
    assert out["suggestions"][-1] == {"name": "t6", "parameterAssignments": [{"name": "x", "value": "6"}],
                                      "earlyStoppingRules": []}
    status["suggestions"].append({"name": "t7", "parameterAssignments": "oops"})
    with pytest.raises(Invalid) as err:
        normalize_status(stored, status)
    assert err.value.errors == ["status.suggestions.7.parameterAssignments: Input should be a valid list"]
