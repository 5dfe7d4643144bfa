"""deploy/kubernetes/katib-dropin: the overlay that replaces Katib's controller. Every manifest
it produces validates against the Kubernetes schema; the RBAC is exactly what the Kubernetes
store and the webhook's certificate code call (the store's table is checked against the requests
it really sends by its integration tests), plus each controller's update on the finalizers of
the kind that owns what it creates; it points at Katib's CRDs, Service and Secret by the names
Katib's release uses."""

from __future__ import annotations

import re
from pathlib import Path

import jsonpatch
import kubernetes_validate
import pytest
import yaml

from services.admission.__main__ import POD_WEBHOOK_CALLS
from services.admission.__main__ import build_parser as webhook_parser
from services.admission.certs import API_CALLS as WEBHOOK_CALLS
from sextant.controller_main import add_controller_arguments
from sextant.runtime.kubernetes import EARLY_STOPPING_GRANTS
from sextant.store.kubernetes import API_CALLS as STORE_CALLS
from sextant.store.kubernetes import KIND_PATHS, OWNER_FINALIZER_CALLS
from tests.unit.test_manifests import (
    SCHEMA_VERSION,
    TLS_ACCESS,
    assemble,
    by_kind,
    expected_rules,
    suggestion_controller_access,
)

OVERLAY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "katib-dropin"
CONTROLLERS = ("sextant-experiment-controller", "sextant-suggestion-controller", "sextant-trial-controller")
REMOTE = re.compile(r"^https://github\.com/kubeflow/katib/manifests/v1beta1/components/crd\?ref=v\d+\.\d+\.\d+$")


def kustomization() -> dict:
    return yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())


def overlay() -> list[dict]:
    """What the overlay builds, without Katib's CRDs (fetched from Katib's release)."""
    kz = kustomization()
    assert set(kz) <= {"apiVersion", "kind", "resources", "patches"}, "the assembler below knows only these"
    docs: list[dict] = []
    for resource in kz["resources"]:
        if resource == "..":
            docs += assemble()
        elif not REMOTE.match(resource):
            docs += [d for d in yaml.safe_load_all((OVERLAY / resource).read_text()) if d]
    for patch in kz["patches"]:
        target = patch["target"]
        (doc,) = [d for d in docs if d["kind"] == target["kind"] and d["metadata"]["name"] == target["name"]]
        docs[docs.index(doc)] = jsonpatch.apply_patch(doc, yaml.safe_load(patch["patch"]))
    return docs


@pytest.fixture(scope="module")
def manifests() -> list[dict]:
    return overlay()


def test_every_manifest_validates_against_the_kubernetes_schema(manifests) -> None:
    for doc in manifests:
        kubernetes_validate.validate(doc, SCHEMA_VERSION, strict=True)


def test_katibs_crds_come_from_a_katib_release_and_match_what_the_store_calls() -> None:
    remote = [r for r in kustomization()["resources"] if r.startswith("https://")]
    assert len(remote) == 1 and REMOTE.match(remote[0])
    # Katib's CRDs: experiments/suggestions/trials.kubeflow.org, served as v1beta1.
    assert {(p.group, p.version, p.plural) for k, p in KIND_PATHS.items() if k != "Event"} == {
        ("kubeflow.org", "v1beta1", "experiments"), ("kubeflow.org", "v1beta1", "suggestions"),
        ("kubeflow.org", "v1beta1", "trials")}


def _grants(role: dict) -> set[tuple[str, str, str]]:
    return {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


def test_the_controllers_may_make_exactly_the_stores_calls(manifests) -> None:
    role = by_kind(manifests, "ClusterRole")["sextant-katib-store"]
    assert _grants(role) == set(STORE_CALLS)
    binding = by_kind(manifests, "ClusterRoleBinding")["sextant-katib-store"]
    assert binding["roleRef"]["name"] == "sextant-katib-store"
    assert sorted(s["name"] for s in binding["subjects"]) == list(CONTROLLERS)


def _blocked_owners(objects: list[dict]) -> set[tuple[str, str, str]]:
    """The finalizers grant each blocking owner reference of ``objects`` needs."""
    return {(ref["apiVersion"].split("/")[0], KIND_PATHS[ref["kind"]].plural + "/finalizers", "update")
            for obj in objects for ref in obj["metadata"].get("ownerReferences") or []
            if ref.get("blockOwnerDeletion")}


def test_the_owner_finalizer_table_names_the_owners_each_controller_blocks() -> None:
    """What each controller creates on Katib's CRDs, with owner references as Katib sets them
    (blockOwnerDeletion): the owners' finalizers it must be allowed to update."""
    from services.experiment_controller.trials import owner_reference
    from sextant.resources.models import Experiment, ObjectMeta, Trial, to_doc
    from sextant.runtime.base import JobSpec, ServiceSpec
    from sextant.runtime.kubernetes import render_service_objects, render_trial_object

    experiment = Experiment(metadata=ObjectMeta(name="e", namespace="ns", uid="uid-e"))
    trial = to_doc(Trial(metadata=ObjectMeta(name="t", namespace="ns", owner_references=[owner_reference(experiment)])))
    job = render_trial_object(JobSpec(name="t", namespace="ns", run_spec={
        "apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}},
        owner={"apiVersion": "kubeflow.org/v1beta1", "kind": "Trial", "name": "t", "uid": "uid-t"}))
    service = render_service_objects(ServiceSpec(
        name="e-medianstop", namespace="ns", algorithm="random", command=[], image="img",
        early_stopping_command=["x"], early_stopping_image="img", persistent=True,
        owner={"apiVersion": "kubeflow.org/v1beta1", "kind": "Suggestion", "name": "e", "uid": "uid-s"}),
        early_stopping_store=True)
    made = {"experiment_controller": [trial], "trial_controller": [job],
            "suggestion_controller": list(service.values())}
    assert len(service) >= 5  # Deployment, Service, PVC, ServiceAccount, Role, RoleBinding
    assert {component: _blocked_owners(objects) for component, objects in made.items()} == {
        component: {grant} for component, grant in OWNER_FINALIZER_CALLS.items()}


@pytest.mark.parametrize("component", sorted(OWNER_FINALIZER_CALLS))
def test_each_controller_may_update_the_finalizers_of_what_owns_its_objects(manifests, component) -> None:
    name = "sextant-" + component.replace("_", "-")
    role = by_kind(manifests, "ClusterRole")[name + "-owner"]
    assert _grants(role) == {OWNER_FINALIZER_CALLS[component]}
    binding = by_kind(manifests, "ClusterRoleBinding")[name + "-owner"]
    assert binding["roleRef"]["name"] == name + "-owner"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": "sextant"}]


def test_the_suggestion_controller_may_give_early_stopping_its_account_and_role(manifests) -> None:
    role = by_kind(manifests, "ClusterRole")["sextant-early-stopping-access"]
    assert _grants(role) == expected_rules("early_stopping_access")
    binding = by_kind(manifests, "ClusterRoleBinding")["sextant-early-stopping-access"]
    assert binding["roleRef"]["name"] == "sextant-early-stopping-access"
    assert [s["name"] for s in binding["subjects"]] == ["sextant-suggestion-controller"]
    # Kubernetes lets a Role be created or bound only by who holds its permissions (or may
    # escalate/bind): the suggestion controller holds every grant through the store's role.
    granted = {(g, r, v) for g, r, verbs in EARLY_STOPPING_GRANTS for v in verbs}
    assert granted <= _grants(by_kind(manifests, "ClusterRole")["sextant-katib-store"])
    assert not {"escalate", "bind"} & {v for _, _, v in _grants(role)}


def test_the_controllers_run_on_the_kubernetes_store_with_an_api_token(manifests) -> None:
    import argparse

    deployments, accounts = by_kind(manifests, "Deployment"), by_kind(manifests, "ServiceAccount")
    for name in CONTROLLERS:
        pod = deployments[name]["spec"]["template"]["spec"]
        parser = argparse.ArgumentParser()
        add_controller_arguments(parser)
        parsed, _ = parser.parse_known_args(pod["containers"][0]["args"][1:])
        assert parsed.store == "kubernetes", name
        if name == "sextant-trial-controller":
            args = pod["containers"][0]["args"]
            assert args[args.index("--metrics-collector") + 1] == "sidecar"
        assert pod["automountServiceAccountToken"] is True
        assert accounts[name].get("automountServiceAccountToken", True) is True


def test_the_webhook_sits_behind_katibs_service_with_exactly_its_certificate_calls(manifests) -> None:
    webhook = by_kind(manifests, "Deployment")["sextant-webhook"]
    assert webhook["metadata"]["namespace"] == "kubeflow"
    pod = webhook["spec"]["template"]
    # Katib's katib-controller Service selects this label and sends 443 to 8443.
    assert pod["metadata"]["labels"]["katib.kubeflow.org/component"] == "controller"
    (container,) = pod["spec"]["containers"]
    args = webhook_parser().parse_args(container["args"][1:])
    assert (args.namespace, args.service, args.secret, args.port) == (
        "kubeflow", "katib-controller", "katib-webhook-cert", 8443)
    assert container["ports"] == [{"name": "webhook", "containerPort": 8443}]
    role = by_kind(manifests, "Role")["sextant-webhook"]
    cluster_role = by_kind(manifests, "ClusterRole")["sextant-webhook"]
    assert _grants(role) | _grants(cluster_role) == set(WEBHOOK_CALLS.values()) | set(POD_WEBHOOK_CALLS)
    # Webhook configurations only by name; Trials and Namespaces are read, nothing more.
    assert all(rule.get("resourceNames") == ["katib.kubeflow.org"] for rule in cluster_role["rules"]
               if rule["apiGroups"] == ["admissionregistration.k8s.io"])
    assert all(rule["verbs"] == ["get"] for rule in cluster_role["rules"]
               if rule["apiGroups"] != ["admissionregistration.k8s.io"])
    assert args.collector_image and args.db_manager == "sextant-db-manager.sextant:6789"
    # The DB manager serves only TLS and wants a token: the sidecars get both.
    dbm = by_kind(manifests, "Deployment")["sextant-db-manager"]["spec"]["template"]["spec"]["containers"][0]
    assert "--tls-cert" in dbm["args"] and "SEXTANT_TOKEN" in {e["name"] for e in dbm["env"]}
    assert (args.token_secret, args.ca_secret) == ("sextant-token", "sextant-db-manager-ca")
    # And so do the early-stopping containers of algorithm pods: medianstop reads the trials'
    # observation logs from that DB manager, with the same Secrets in the pod's namespace.
    assert suggestion_controller_access(by_kind(manifests, "Deployment")["sextant-suggestion-controller"]) \
        == TLS_ACCESS
    named = [rule for rule in role["rules"] if "resourceNames" in rule]
    assert named and all(rule["resourceNames"] == ["katib-webhook-cert"] for rule in named)
    assert [rule["verbs"] for rule in role["rules"] if "resourceNames" not in rule] == [["create"]]


def test_katibs_ui_and_sdk_reach_the_db_managers_read_only_port_by_katibs_service_name(manifests) -> None:
    """Katib's UI and KatibClient.get_trial_metrics dial katib-db-manager.kubeflow:6789 in
    plaintext without a token: that name leads to the DB manager pod's read-only Katib port."""
    from services.db_manager.__main__ import build_parser as db_manager_parser

    services = by_kind(manifests, "Service")
    alias, read = services["katib-db-manager"], services["sextant-db-manager-katib"]
    assert alias["metadata"]["namespace"] == "kubeflow" and alias["spec"]["type"] == "ExternalName"
    assert alias["spec"]["externalName"] == f"sextant-db-manager-katib.{read['metadata']['namespace']}.svc.cluster.local"
    assert [p["port"] for p in alias["spec"]["ports"]] == [6789]
    (port,) = read["spec"]["ports"]
    assert port["port"] == 6789
    # The Service selects the DB manager's pod, in the DB manager's namespace...
    dbm = by_kind(manifests, "Deployment")["sextant-db-manager"]
    assert read["metadata"]["namespace"] == dbm["metadata"]["namespace"]
    labels = dbm["spec"]["template"]["metadata"]["labels"]
    assert read["spec"]["selector"] and read["spec"]["selector"].items() <= labels.items()
    # ... and targets the read-only port, not the API port (TLS and a token).
    (container,) = dbm["spec"]["template"]["spec"]["containers"]
    args = db_manager_parser().parse_args(container["args"][1:])
    target = {p["name"]: p["containerPort"] for p in container["ports"]}[port["targetPort"]]
    assert args.katib_read_port == target and args.port != target
    assert args.host == "0.0.0.0"  # the read port listens on --host too: reachable from other pods


def test_katibs_early_stopping_in_algorithm_pods_it_created_reads_from_the_read_only_port(manifests) -> None:
    """Algorithm Deployments Katib's controller created before the switch keep Katib's medianstop,
    which dials the DB manager in plaintext with no token: the suggestion controller hands those
    Katib's Service name, which leads to the read-only port; its own services keep the TLS one."""
    from services.suggestion.controller.__main__ import build_parser as suggestion_parser

    container = by_kind(manifests, "Deployment")["sextant-suggestion-controller"]["spec"]["template"]["spec"][
        "containers"][0]
    args = suggestion_parser().parse_args(container["args"][1:])  # every flag is one it accepts
    alias = by_kind(manifests, "Service")["katib-db-manager"]
    (port,) = alias["spec"]["ports"]
    assert args.katib_db_manager_address == f"{alias['metadata']['name']}.{alias['metadata']['namespace']}:{port['port']}"
    assert (args.db_manager_address_for_services or args.db_manager) != args.katib_db_manager_address
    assert args.runtime == "kubernetes"
