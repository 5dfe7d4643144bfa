"""The API server's pure parts: content negotiation, selectors, patches, Age, Status causes,
the protobuf Namespace reader, OpenAPI and the TLS/kubeconfig files."""

from __future__ import annotations

import base64
import json
import ssl

import pytest
import yaml

from services.api_server import media, openapi, protobuf, tables
from services.api_server.errors import ApiError, invalid, split_cause
from services.api_server.patch import apply_patch, merge_patch
from services.api_server.selectors import parse_labels, selector
from sextant import timestamps
from sextant.kubeconfig import write_kubeconfig
from sextant.tls import ensure_tls

V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


@pytest.mark.parametrize(("accept", "expected"), [
    (f"{V2},{V2BETA1},application/json", "v2"),
    (f"{V2BETA1},application/json", "v2beta1"),  # kubectl 1.29: v=v2 must not match inside v=v2beta1
    ("application/json, */*", None),
    ("application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json", None),
])
def test_discovery_negotiation_matches_versions_exactly(accept, expected):
    assert media.discovery_version(accept) == expected


def test_table_negotiation_follows_the_clients_order():
    kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
    assert media.table_version(kubectl) == "v1"
    assert media.table_version("application/json;as=Table;v=v1beta1;g=meta.k8s.io") == "v1beta1"
    assert media.table_version("application/json") is None


@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "<invalid>"), (0, "0s"), (119, "119s"), (130, "2m10s"), (180, "3m"), (600, "10m"), (3 * 3600 + 60, "3h1m"), (9 * 3600, "9h"), (50 * 3600, "2d2h"), (8 * 86400, "8d"),
    (800 * 86400, "2y70d"), (9 * 365 * 86400, "9y"),
])
def test_age_is_formatted_as_kubernetes_does(seconds, text):
    assert timestamps.human_duration(seconds) == text


def test_experiment_table_has_katibs_columns_and_wide_extras():
    doc = {"metadata": {"name": "e", "creationTimestamp": "2020-01-01T00:00:00Z"},
           "spec": {"algorithm": {"algorithmName": "tpe"}, "maxTrialCount": 5,
                    "objective": {"objectiveMetricName": "loss", "type": "minimize"}},
           "status": {"conditions": [{"type": "Created", "status": "True"}, {"type": "Running", "status": "False"}],
                      "trialsSucceeded": 2, "trialsRunning": 1, "trialsFailed": 1,
                      "currentOptimalTrial": {"observation": {"metrics": [
                          {"name": "loss", "min": "0.100000123456", "max": "0.9", "latest": "0.5"}]}}}}
    table = tables.table("Experiment", [doc])
    names = [(c["name"], c["priority"]) for c in table["columnDefinitions"]]
    assert names == [("Name", 0), ("Type", 0), ("Status", 0), ("Age", 0), ("Algorithm", 1), ("Trials", 1),
                     ("Best", 1), ("Pareto", 1)]
    cells = table["rows"][0]["cells"]
    assert cells[:3] == ["e", "Running", "False"] and cells[3].startswith("6y")
    assert cells[4:] == ["tpe", "2/1/1 of 5", "loss=0.1", ""]  # six significant digits; single objective: no front
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    doc["status"]["paretoOptimalTrials"] = [{"bestTrialName": f"e-{i}"} for i in range(7)]
    assert tables.table("Experiment", [doc])["rows"][0]["cells"][-1] == "7: e-0,e-1,e-2,e-3,e-4,..."


def test_label_and_field_selectors():
    labels = {"app": "a", "tier": "web"}
    assert all(r.matches(labels) for r in parse_labels("app=a,tier in (web,db),!missing,app"))
    assert not all(r.matches(labels) for r in parse_labels("tier notin (web)"))
    assert not all(r.matches(labels) for r in parse_labels("app!=a"))
    sel = selector("app==a", "metadata.name=x,metadata.namespace!=kube")
    assert sel.matches({"metadata": {"name": "x", "namespace": "default", "labels": labels}})
    assert not sel.matches({"metadata": {"name": "y", "namespace": "default", "labels": labels}})
    with pytest.raises(ApiError) as err:
        selector(None, "spec.secret=1")
    assert err.value.code == 400


def test_merge_and_json_patches():
    doc = {"spec": {"a": 1, "b": {"c": 2}}, "metadata": {"labels": {"x": "1"}}}
    assert merge_patch(doc, {"spec": {"b": None, "d": [1]}}) == {"spec": {"a": 1, "d": [1]},
                                                                  "metadata": {"labels": {"x": "1"}}}
    patched = apply_patch(doc, "application/json-patch+json",
                          b'[{"op":"replace","path":"/spec/a","value":3},{"op":"remove","path":"/metadata/labels/x"}]')
    assert patched["spec"]["a"] == 3 and patched["metadata"]["labels"] == {}
    assert doc["spec"]["a"] == 1  # the input is not modified
    with pytest.raises(ApiError) as err:
        apply_patch(doc, "application/strategic-merge-patch+json", b"{}")
    assert err.value.code == 415 and "application/merge-patch+json" in err.value.message
    with pytest.raises(ApiError) as err:
        apply_patch(doc, "application/json-patch+json", b'[{"op":"test","path":"/spec/a","value":9}]')
    assert err.value.code == 422


def test_invalid_status_names_each_field():
    assert split_cause("spec.maxTrialCount: Invalid value: -1: must be greater than 0") == {
        "reason": "FieldValueInvalid", "field": "spec.maxTrialCount",
        "message": "Invalid value: -1: must be greater than 0"}
    status = invalid("Experiment", "kubeflow.org", "experiments", "e",
                     ["spec.a: must be set", "spec.b: too big"]).status()
    assert status["code"] == 422 and status["reason"] == "Invalid"
    assert status["message"] == 'Experiment.kubeflow.org "e" is invalid: spec.a: must be set, spec.b: too big'
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.a", "spec.b"]


def _field(number: int, payload: bytes) -> bytes:
    return bytes([number << 3 | 2, len(payload)]) + payload


def test_protobuf_namespace_is_read():
    label = _field(1, b"team") + _field(2, b"ml")
    meta = _field(1, b"ns-a") + _field(11, label)
    body = protobuf.MAGIC + _field(1, _field(1, b"v1") + _field(2, b"Namespace")) + _field(2, _field(1, meta))
    assert protobuf.decode_object(body) == {"apiVersion": "v1", "kind": "Namespace",
                                            "metadata": {"name": "ns-a", "labels": {"team": "ml"}}}
    with pytest.raises(ApiError):
        protobuf.decode_object(b"nope")


def test_openapi_patch_operations_carry_gvk_and_field_validation():
    doc = json.loads(openapi.document("kubeflow.org", "v1beta1"))
    patch = doc["paths"]["/apis/kubeflow.org/v1beta1/namespaces/{namespace}/experiments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "kubeflow.org", "version": "v1beta1",
                                                        "kind": "Experiment"}
    assert {"name": "fieldValidation", "in": "query"}.items() <= next(
        p for p in patch["parameters"] if p["name"] == "fieldValidation").items()
    schema = doc["components"]["schemas"]["io.sextant.v1beta1.Experiment"]
    assert schema["x-kubernetes-group-version-kind"][0]["kind"] == "Experiment"
    spec = doc["components"]["schemas"]["io.sextant.v1beta1.ExperimentSpec"]
    assert {"maxTrialCount", "parallelTrialCount", "parameters"} <= set(spec["properties"])
    assert "anyOf" not in json.dumps(spec["properties"]["maxTrialCount"])


def test_tls_files_and_kubeconfig(tmp_path):
    files = ensure_tls(tmp_path / "tls")
    first = files.cert.read_bytes()
    assert ensure_tls(tmp_path / "tls").cert.read_bytes() == first  # reused while valid
    assert oct(files.key.stat().st_mode & 0o777) == "0o600"
    context = ssl.create_default_context(cafile=str(files.ca_cert))
    context.load_cert_chain(files.cert, files.key)  # the pair matches
    path = write_kubeconfig(tmp_path, "https://127.0.0.1:6443", files.ca_cert.read_bytes(), "tok")
    config = yaml.safe_load(path.read_text())
    cluster = config["clusters"][0]
    assert cluster["name"] == "sextant" and cluster["cluster"]["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["cluster"]["certificate-authority-data"]) == files.ca_cert.read_bytes()
    assert config["users"][0]["user"]["token"] == "tok" and config["current-context"] == "sextant"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
