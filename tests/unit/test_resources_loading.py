"""Loading documents from text: YAML streams, JSON, errors with positions, limits; never a crash."""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sextant.resources import loading
from sextant.resources.admission import admit_experiment
from sextant.resources.loading import detect_api_version, load_document, load_documents
from sextant.store.interface import Invalid


def test_yaml_stream_with_empty_documents():
    docs = load_documents("---\na: 1\n---\n---\nb: [1, 2]\n...\n")
    assert docs == [{"a": 1}, {"b": [1, 2]}]


def test_json_object_and_array():
    assert load_documents('{"kind": "Experiment"}') == [{"kind": "Experiment"}]
    assert load_documents(b'[{"a": 1}, {"b": 2}]') == [{"a": 1}, {"b": 2}]


def test_yaml_error_reports_line_and_column_in_the_stream():
    with pytest.raises(Invalid) as err:
        load_documents("a: 1\n---\nb: 2\nc: [x\nd: 3\n")
    (message,) = err.value.errors
    assert message.startswith("document 2: invalid YAML at line ")
    line = int(message.split("line ")[1].split(",")[0])
    assert line >= 4  # counted in the whole file, not the document
    assert "column" in message


def test_json_error_reports_position():
    with pytest.raises(Invalid) as err:
        load_documents('{"a": 1,\n "b": }')
    assert "line 2, column" in err.value.errors[0]


def test_duplicate_keys_are_refused():
    with pytest.raises(Invalid, match="duplicate key 'name'"):
        load_documents("metadata:\n  name: a\n  name: b\n")


def test_non_mapping_documents_are_refused():
    for text in ("- a\n- b\n", "42\n", "just text\n", '"x"'):
        with pytest.raises(Invalid, match="must be a mapping"):
            load_documents(text)


def test_oversized_document(monkeypatch):
    monkeypatch.setattr(loading, "MAX_DOCUMENT_BYTES", 100)
    small = "a: " + "x" * 50 + "\n"
    assert load_documents(small + "---\n" + small)  # each document counts on its own
    with pytest.raises(Invalid, match="larger than the limit of 100 bytes"):
        load_documents("a: " + "x" * 200 + "\n")
    with pytest.raises(Invalid, match="larger than the limit"):
        load_documents(json.dumps({"a": "x" * 200}))


def test_not_utf8():
    with pytest.raises(Invalid, match="not UTF-8"):
        load_documents(b"a: \xff\xfe\n")


def test_load_document_needs_exactly_one():
    assert load_document("a: 1") == {"a": 1}
    with pytest.raises(Invalid, match="exactly one document, found 2"):
        load_document("a: 1\n---\nb: 2\n")


def test_api_version_detection():
    assert detect_api_version({}) == "kubeflow.org/v1beta1"
    assert detect_api_version({"apiVersion": "kubeflow.org/v1beta1"}) == "kubeflow.org/v1beta1"
    assert detect_api_version({"apiVersion": "kubeflow.org/v1alpha3"}) == "kubeflow.org/v1alpha3"
    with pytest.raises(Invalid, match="^apiVersion: must be one of"):
        detect_api_version({"apiVersion": "kubeflow.org/v1"})


# --- property tests: arbitrary input loads or is Invalid, never anything else ------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=30,
)
KEYS = ["apiVersion", "kind", "metadata", "spec", "name", "namespace", "parameters", "objective", "algorithm",
        "trialTemplate", "trialSpec", "feasibleSpace", "min", "max", "list", "parameterType", "type",
        "objectiveMetricName", "algorithmName", "metricsCollectorSpec", "collector", "source", "goTemplate",
        "rawTemplate", "maxTrialCount", "parallelTrialCount", "trialParameters", "reference", "annotations"]
experiment_like = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 50) | st.sampled_from(
        ["", "kubeflow.org/v1beta1", "kubeflow.org/v1alpha3", "Experiment", "random", "double", "int",
         "categorical", "maximize", "0.1", "5", "x", "${trialParameters.a}", "None", "File", "StdOut"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(KEYS), children, max_size=5),
    max_leaves=40,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_arbitrary_text_loads_or_is_invalid(text):
    try:
        docs = load_documents(text)
    except Invalid as err:
        assert err.errors and all(isinstance(e, str) for e in err.errors)
        return
    assert all(isinstance(d, dict) for d in docs)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_arbitrary_json_and_yaml_dumps_load_or_are_invalid(value):
    for text in (json.dumps(value), yaml.safe_dump(value)):
        try:
            load_documents(text)
        except Invalid as err:
            assert err.errors


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(experiment_like)
def test_admission_of_arbitrary_documents_never_crashes(doc):
    try:
        admit_experiment(doc)
    except Invalid as err:
        assert err.errors
        for message in err.errors:
            assert ": " in message


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), experiment_like, max_size=6))
def test_admission_of_arbitrary_spec_never_crashes(spec):
    doc = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": "x"}, "spec": spec}
    for version in ("kubeflow.org/v1beta1", "kubeflow.org/v1alpha3"):
        doc["apiVersion"] = version
        try:
            admit_experiment(doc)
        except Invalid as err:
            assert err.errors
