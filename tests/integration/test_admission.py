"""Sextant's admission webhooks (services.admission) over real HTTP: AdmissionReview v1 in and
out, the mutating webhook's JSON patch gives exactly Sextant's defaults, the validating webhook
denies with every error ``sextant validate`` reports; the serving certificate is issued into a
Secret and its CA patched into Katib's webhook configurations (on the kmock emulator, with the
real ``kubernetes`` client) and served over TLS for the Service's DNS name."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
import uuid
from pathlib import Path

import jsonpatch
import pytest
import pytest_asyncio
import yaml
from aiohttp.test_utils import TestClient, TestServer
from kubernetes import client

from services.admission.app import build_app
from services.admission.certs import WebhookIdentity, ensure_serving_certificate
from sextant.cli.files import load_experiments
from sextant.resources import admit_experiment
from sextant.resources.models import to_doc
from tests.integration.kmock_server import kmock_cluster

ROOT = Path(__file__).resolve().parents[2]
VALID = [p for p in sorted((ROOT / "tests" / "data" / "experiments" / "valid").glob("*.yaml")) if p.name != "expected.yaml"] + \
    sorted((ROOT / "examples" / "v1beta1").glob("*.yaml"))
INVALID = [p for p in sorted((ROOT / "tests" / "data" / "experiments" / "invalid").glob("*.yaml")) if p.name != "expected.yaml"]


def review(obj: object, operation: str = "CREATE", old: object = None) -> dict:
    request = {"uid": str(uuid.uuid4()), "kind": {"group": "kubeflow.org", "version": "v1beta1", "kind": "Experiment"},
               "resource": {"group": "kubeflow.org", "version": "v1beta1", "resource": "experiments"},
               "operation": operation, "object": obj, "namespace": "default"}
    if old is not None:
        request["oldObject"] = old
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


@pytest_asyncio.fixture
async def webhook():
    async with TestClient(TestServer(build_app())) as http:
        async def call(path: str, body: dict) -> dict:
            reply = await http.post(path, json=body)
            assert reply.status == 200
            answer = await reply.json()
            assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
            assert answer["response"]["uid"] == body["request"]["uid"]
            return answer["response"]
        yield call


def _documents(path: Path) -> list[dict]:
    try:
        docs = list(yaml.safe_load_all(path.read_text()))
    except yaml.YAMLError:
        return []
    return [d for d in docs if isinstance(d, dict) and d.get("kind", "Experiment") == "Experiment"]


@pytest.mark.asyncio
@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
async def test_the_mutating_patch_gives_sextants_defaults_and_validation_then_allows(webhook, path) -> None:
    for doc in _documents(path):
        doc.setdefault("metadata", {}).setdefault("namespace", "default")
        mutated = await webhook("/mutate-experiment", review(doc))
        assert mutated["allowed"] is True
        patched = doc
        if "patch" in mutated:
            assert mutated["patchType"] == "JSONPatch"
            patched = jsonpatch.apply_patch(doc, json.loads(base64.b64decode(mutated["patch"])))
        assert patched["spec"] == to_doc(admit_experiment(doc))["spec"]
        assert patched["metadata"] == doc["metadata"]  # defaults touch the spec only
        assert (await webhook("/validate-experiment", review(patched)))["allowed"] is True


@pytest.mark.asyncio
@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
async def test_the_validating_webhook_denies_with_every_error_sextant_validate_reports(webhook, path) -> None:
    loaded = load_experiments([str(path)])
    docs = _documents(path)
    if len(docs) != 1 or not loaded.errors:
        pytest.skip(f"{path.name}: not one Experiment document (the CLI's file errors are not admission's)")
    expected = [e.split(": ", 1)[1] for e in loaded.errors]  # without the file label
    denied = await webhook("/validate-experiment", review(docs[0]))
    assert denied["allowed"] is False
    status = denied["status"]
    assert status["code"] == 403 and status["reason"] == "Forbidden"
    got = [f"{c['field']}: {c['message']}" if "field" in c else c["message"] for c in status["details"]["causes"]]
    assert got == expected
    assert all(e in status["message"] for e in expected)
    # The mutating webhook lets an invalid document through unchanged: validation says why.
    mutation = review(docs[0])
    assert await webhook("/mutate-experiment", mutation) == {"uid": mutation["request"]["uid"], "allowed": True}


@pytest.mark.asyncio
async def test_an_update_may_change_only_the_trial_counts(webhook) -> None:
    (doc,) = _documents(ROOT / "tests" / "data" / "experiments" / "valid" / "random-basic.yaml")
    old = to_doc(admit_experiment(doc))
    more = json.loads(json.dumps(old))
    more["spec"]["maxTrialCount"] = old["spec"]["maxTrialCount"] + 5
    assert (await webhook("/validate-experiment", review(more, "UPDATE", old)))["allowed"] is True
    other = json.loads(json.dumps(old))
    other["spec"]["algorithm"]["algorithmName"] = "grid"
    denied = await webhook("/validate-experiment", review(other, "UPDATE", old))
    assert denied["allowed"] is False and "algorithm" in denied["status"]["message"]


@pytest.mark.asyncio
async def test_what_is_not_an_admission_review_is_a_bad_request() -> None:
    async with TestClient(TestServer(build_app())) as http:
        assert (await http.post("/validate-experiment", data=b"{")).status == 400
        assert (await http.post("/validate-experiment", json={"kind": "Pod"})).status == 400


WEBHOOKS = {"MutatingWebhookConfiguration": ["defaulter.experiment.katib.kubeflow.org", "mutator.pod.katib.kubeflow.org"],
            "ValidatingWebhookConfiguration": ["validator.experiment.katib.kubeflow.org"]}


def _configuration(kind: str) -> dict:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": "katib.kubeflow.org"},
            "webhooks": [{"name": name, "sideEffects": "None", "admissionReviewVersions": ["v1"],
                          "clientConfig": {"service": {"name": "katib-controller", "namespace": "kubeflow",
                                                       "path": "/x"}}} for name in WEBHOOKS[kind]]}


def test_the_serving_certificate_is_issued_into_a_secret_and_its_ca_patched_in(tmp_path) -> None:
    with kmock_cluster() as cluster:
        cluster.handler.resources.load_bundled()  # the built-in kinds, cluster-scoped ones among them
        api = cluster.api_client()
        admission = client.AdmissionregistrationV1Api(api)
        admission.create_mutating_webhook_configuration(_configuration("MutatingWebhookConfiguration"))
        admission.create_validating_webhook_configuration(_configuration("ValidatingWebhookConfiguration"))
        identity = WebhookIdentity("kubeflow", "katib-controller", "katib-webhook-cert")
        files = ensure_serving_certificate(api, identity, tmp_path / "first")
        secret = client.CoreV1Api(api).read_namespaced_secret("katib-webhook-cert", "kubeflow")
        assert sorted(secret.data) == ["ca.crt", "ca.key", "tls.crt", "tls.key"]
        ca = files.ca_cert.read_bytes()
        bundle = base64.b64encode(ca).decode()
        for config in (admission.read_mutating_webhook_configuration("katib.kubeflow.org"),
                       admission.read_validating_webhook_configuration("katib.kubeflow.org")):
            assert [w.client_config.ca_bundle for w in config.webhooks] == [bundle] * len(config.webhooks)
        # A restart (another empty directory) reuses what the Secret holds: no new certificate.
        again = ensure_serving_certificate(api, identity, tmp_path / "second")
        assert again.cert.read_bytes() == files.cert.read_bytes() and again.ca_cert.read_bytes() == ca

    # The certificate is valid for the Service's cluster DNS name, under the patched CA.
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(files.cert, files.key)
    client_context = ssl.create_default_context(cadata=ca.decode())
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def accept() -> None:
        conn, _ = listener.accept()
        try:
            with server_context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass

    threading.Thread(target=accept, daemon=True).start()
    with socket.create_connection(("127.0.0.1", port)) as raw, \
            client_context.wrap_socket(raw, server_hostname="katib-controller.kubeflow.svc") as tls:
        assert tls.version() is not None
    listener.close()


@pytest.mark.asyncio
async def test_with_the_sidecar_collector_a_namespace_without_the_injection_label_is_refused() -> None:
    """As Katib: experiments only in namespaces whose trial pods get the collector injected.
    (The namespaces' labels are a table here: kmock cannot serve cluster-scoped Namespaces.)"""
    (doc,) = _documents(ROOT / "tests" / "data" / "experiments" / "valid" / "random-basic.yaml")
    namespaces = {"labelled": {"katib.kubeflow.org/metrics-collector-injection": "enabled"},
                  "disabled": {"katib.kubeflow.org/metrics-collector-injection": "disabled"}, "plain": {}}

    def labels(namespace: str) -> dict[str, str]:
        return namespaces[namespace]  # KeyError: the namespace cannot be read

    async with TestClient(TestServer(build_app(namespace_labels=labels))) as http:
        async def validate(namespace: str) -> dict:
            body = review(doc)
            body["request"]["namespace"] = namespace
            reply = await http.post("/validate-experiment", json=body)
            assert reply.status == 200
            return (await reply.json())["response"]

        allowed = await validate("labelled")
        assert allowed["allowed"] is True, allowed
        name = doc["metadata"]["name"]
        for namespace in ("plain", "disabled"):
            refused = await validate(namespace)
            assert refused["allowed"] is False and refused["status"]["code"] == 400
            assert refused["status"]["message"] == (
                f'Cannot create the Experiment "{name}" in namespace "{namespace}": the namespace lacks label '
                '"katib.kubeflow.org/metrics-collector-injection: enabled"')
        missing = await validate("nowhere")  # cannot be read: the webhook's own error
        assert missing["allowed"] is False and missing["status"]["code"] == 500
    # Without the sidecar collector (wrapped commands), the label is not required.
    async with TestClient(TestServer(build_app())) as http:
        body = review(doc)
        body["request"]["namespace"] = "plain"
        assert (await (await http.post("/validate-experiment", json=body)).json())["response"]["allowed"] is True
