"""The experiment corpora: every valid file admits and defaults as Katib would; every invalid
file is rejected with one error per expected field (all at once, each naming its field)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sextant.resources.admission import validate_file
from sextant.resources.models import Experiment, to_doc
from sextant.store.interface import Invalid

DATA = Path(__file__).resolve().parents[1] / "data" / "experiments"
VALID_EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((DATA / "valid" / "expected.yaml").read_text())
INVALID_EXPECTED: dict[str, list[str]] = yaml.safe_load((DATA / "invalid" / "expected.yaml").read_text())
ABSENT = object()


def corpus(directory: str) -> list[str]:
    return sorted(p.name for p in (DATA / directory).iterdir() if p.name != "expected.yaml")


def lookup(doc: Any, path: str) -> Any:
    """Resolves "spec.parameters[0].feasibleSpace.min"; keys may contain dots (annotations)."""
    node, rest = doc, path
    while rest:
        if rest.startswith("["):
            index, _, rest = rest[1:].partition("]")
            rest = rest.removeprefix(".")
            if not isinstance(node, list) or int(index) >= len(node):
                return ABSENT
            node = node[int(index)]
            continue
        if not isinstance(node, dict):
            return ABSENT
        # Longest key that the remaining path starts with (so "sextant.io/x" works).
        keys = [k for k in node if rest == k or rest.startswith(k + ".") or rest.startswith(k + "[")]
        if not keys:
            return ABSENT
        key = max(keys, key=len)
        node, rest = node[key], rest[len(key):].removeprefix(".")
    return node


def test_corpora_are_big_enough_and_fully_described():
    assert len(corpus("valid")) >= 30
    assert len(corpus("invalid")) >= 60
    assert set(corpus("valid")) == set(VALID_EXPECTED)
    assert set(corpus("invalid")) == set(INVALID_EXPECTED)


@pytest.mark.parametrize("name", corpus("valid"))
def test_valid_experiment_admits_with_katib_defaults(name):
    results = validate_file(DATA / "valid" / name)
    assert len(results) == 1
    (result,) = results
    assert isinstance(result, Experiment), f"{name}: {getattr(result, 'errors', result)}"
    doc = to_doc(result)
    # Defaults every experiment gets, whatever the file says.
    assert doc["spec"]["parallelTrialCount"] >= 1
    assert doc["spec"]["resumePolicy"] in ("Never", "LongRunning", "FromVolume")
    assert doc["spec"]["metricsCollectorSpec"]["collector"]["kind"]
    for parameter in doc["spec"].get("parameters", []):
        assert parameter["feasibleSpace"]["distribution"]
    strategies = {s["name"] for s in doc["spec"]["objective"]["metricStrategies"]}
    objective = doc["spec"]["objective"]
    assert {objective["objectiveMetricName"], *objective.get("additionalMetricNames", [])} <= strategies
    for path, value in VALID_EXPECTED[name].items():
        actual = lookup(doc, path)
        if value is None:
            assert actual is ABSENT or actual in ([], {}, None), f"{name}: {path} = {actual!r}"
        else:
            assert actual == value, f"{name}: {path}"


@pytest.mark.parametrize("name", corpus("valid"))
def test_valid_experiment_defaults_are_idempotent(name):
    """Re-admitting what was stored (as the store does on update) changes nothing."""
    (first,) = validate_file(DATA / "valid" / name)
    from sextant.resources.admission import admit_experiment

    again = admit_experiment(to_doc(first))
    assert to_doc(again) == to_doc(first)


def error_fields(err: Invalid) -> list[str]:
    return [message.split(": ", 1)[0] for message in err.errors]


@pytest.mark.parametrize("name", corpus("invalid"))
def test_invalid_experiment_reports_every_field(name):
    results = validate_file(DATA / "invalid" / name)
    assert len(results) == 1
    (result,) = results
    assert isinstance(result, Invalid), f"{name} was admitted"
    for message in result.errors:
        field, sep, rule = message.partition(": ")
        assert sep and field and rule, f"{name}: {message!r} does not name a field and a rule"
    assert sorted(set(error_fields(result))) == sorted(set(INVALID_EXPECTED[name])), result.errors
