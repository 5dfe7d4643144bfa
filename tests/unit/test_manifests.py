"""deploy/kubernetes: schema-valid manifests, least-privilege RBAC matching the runtime's calls."""

from __future__ import annotations

import ast
import copy
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from sextant.algorithm_registry import Registry
from sextant.runtime import kubernetes as k8s_runtime
from sextant.runtime.base import JobSpec, ServiceSpec, SuggestionVolume
from sextant.runtime.collector_settings import CollectorSettings
from sextant.runtime.db_manager_access import DBManagerAccess

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE_DIR = ROOT / "deploy" / "kubernetes"
SCHEMA_VERSION = kubernetes_validate.latest_version()
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"}


def assemble() -> list[dict]:
    """What `kustomize build` produces for the features our kustomization.yaml uses."""
    kz = yaml.safe_load((KUSTOMIZE_DIR / "kustomization.yaml").read_text())
    known = {"apiVersion", "kind", "namespace", "resources", "generatorOptions", "configMapGenerator",
             "secretGenerator", "images"}
    assert set(kz) <= known, f"kustomization uses features this assembler does not know: {set(kz) - known}"
    docs: list[dict] = []
    for path in kz["resources"]:
        docs += [d for d in yaml.safe_load_all((KUSTOMIZE_DIR / path).read_text()) if d]
    for gen in kz.get("configMapGenerator", []):
        data = {}
        for item in gen.get("files", []):
            key, _, file = item.partition("=")
            data[key] = (KUSTOMIZE_DIR / file).read_text()
        docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]}, "data": data})
    for gen in kz.get("secretGenerator", []):
        literals = dict(item.split("=", 1) for item in gen.get("literals", []))
        docs.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": gen["name"]},
                     "stringData": literals})
    images = {i["name"]: i for i in kz.get("images", [])}
    for doc in docs:
        if doc["kind"] not in CLUSTER_SCOPED:
            doc["metadata"]["namespace"] = kz["namespace"]
        for binding_subject in doc.get("subjects", []):
            binding_subject.setdefault("namespace", kz["namespace"])
        for container in _containers(doc):
            image = images.get(container["image"])
            if image:
                container["image"] = f"{image.get('newName', container['image'])}:{image['newTag']}"
    return docs


def _containers(doc: dict) -> list[dict]:
    pod = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
    return pod.get("containers", []) + pod.get("initContainers", [])


@pytest.fixture(scope="module")
def manifests() -> list[dict]:
    return assemble()


def by_kind(manifests, kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in manifests if d["kind"] == kind}


def test_every_manifest_validates_against_the_kubernetes_schema(manifests):
    assert len(manifests) >= 15
    for doc in manifests:
        kubernetes_validate.validate(doc, SCHEMA_VERSION, strict=True)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) not installed")
def test_kustomize_build_matches_the_assembly_and_validates(manifests):
    out = subprocess.run(["kubectl", "kustomize", str(KUSTOMIZE_DIR)], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    rendered = [d for d in yaml.safe_load_all(out) if d]
    for doc in rendered:
        kubernetes_validate.validate(doc, SCHEMA_VERSION, strict=True)
    key = lambda d: (d["kind"], d["metadata"]["name"], d["metadata"].get("namespace"))  # noqa: E731
    assert sorted(map(key, rendered)) == sorted(map(key, manifests))


def test_runtime_rendered_objects_validate_against_the_schema():
    spec = ServiceSpec(name="exp-tpe", namespace="ns", algorithm="tpe", command=[], image="img:1",
                       args=["python", "-m", "x"], persistent=True, early_stopping_image="img:1",
                       owner={"apiVersion": "kubeflow.org/v1beta1", "kind": "Suggestion", "name": "exp",
                              "uid": "u"})
    objects = k8s_runtime.render_service_objects(spec, early_stopping_store=True)
    assert {"serviceaccount", "role", "rolebinding", "deployment"} <= set(objects)
    for obj in objects.values():
        kubernetes_validate.validate(obj, SCHEMA_VERSION, strict=True)
    job = k8s_runtime.render_trial_object(JobSpec(
        name="exp-abc", namespace="ns", collector=CollectorSettings(metrics=("acc",), trial="exp-abc"), primary_container_name="main",
        run_spec={"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "main", "image": "t", "command": ["python"]}]}}}},
        suggestion_volume=SuggestionVolume("exp-pbt", "exp/exp-abc", "/var/log/katib/checkpoints/")))
    kubernetes_validate.validate(job, SCHEMA_VERSION, strict=True)
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["volumeMounts"] == [{"name": "suggestion-volume", "subPath": "exp/exp-abc",
                                                     "mountPath": "/var/log/katib/checkpoints/"}]
    assert pod["volumes"] == [{"name": "suggestion-volume", "persistentVolumeClaim": {"claimName": "exp-pbt"}}]


# --- RBAC ---------------------------------------------------------------------------------

API_METHOD = re.compile(r"^(create|read|get|list|patch|replace|delete)_(namespaced_|cluster_)?\w+$")


def runtime_api_calls() -> set[str]:
    """Kubernetes client methods called in sextant/runtime/kubernetes.py (self._batch.x(...) etc.)."""
    tree = ast.parse(Path(k8s_runtime.__file__).read_text())
    calls = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) \
                and isinstance(node.value.value, ast.Name) and node.value.value.id == "self" \
                and node.value.attr in {"_batch", "_custom", "_apps", "_core", "_rbac"} and API_METHOD.match(node.attr):
            calls.add(node.attr)
    return calls


def expected_rules(component: str) -> set[tuple[str, str, str]]:
    rules = set()
    for _method, (comp, group, resource, verb) in k8s_runtime.API_CALLS.items():
        if comp != component:
            continue
        if group == "*custom*":
            for text in k8s_runtime.DEFAULT_TRIAL_RESOURCES:
                res = k8s_runtime.TrialResource.parse(text)
                if not res.is_batch_job:
                    rules.add((res.group, res.plural, verb))
        else:
            rules.add((group, resource, verb))
    return rules


def granted(role: dict) -> set[tuple[str, str, str]]:
    out = set()
    for rule in role["rules"]:
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb), f"wildcard in {role['metadata']['name']}"
                    out.add((group, resource, verb))
    return out


def test_the_declared_call_table_is_exactly_what_the_runtime_calls():
    assert runtime_api_calls() == set(k8s_runtime.API_CALLS)


@pytest.mark.parametrize("component", ["trial_controller", "suggestion_controller"])
def test_cluster_roles_grant_exactly_what_the_runtime_calls(manifests, component):
    name = "sextant-" + component.replace("_", "-")
    role = by_kind(manifests, "ClusterRole")[name]
    assert granted(role) == expected_rules(component)
    binding = by_kind(manifests, "ClusterRoleBinding")[name]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": "sextant"}]


def test_only_the_runtime_controllers_get_api_tokens(manifests):
    assert set(by_kind(manifests, "ClusterRole")) == {"sextant-trial-controller", "sextant-suggestion-controller"}
    assert not by_kind(manifests, "Role") and not by_kind(manifests, "RoleBinding")
    workloads = {**by_kind(manifests, "Deployment"), **by_kind(manifests, "StatefulSet")}
    accounts = by_kind(manifests, "ServiceAccount")
    for name, workload in workloads.items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == name, f"{name} must use its own ServiceAccount"
        needs_api = name in {"sextant-trial-controller", "sextant-suggestion-controller"}
        assert pod["automountServiceAccountToken"] is needs_api, name
        assert accounts[name].get("automountServiceAccountToken", True) is needs_api, name
        assert pod["securityContext"]["runAsNonRoot"] is True


# --- services -----------------------------------------------------------------------------

def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def test_db_manager_serves_tls_and_token_with_mariadb_credentials_from_a_secret(manifests):
    service = by_kind(manifests, "Service")["sextant-db-manager"]
    assert service["spec"]["ports"] == [{"name": "api", "port": 6789, "targetPort": 6789}]
    dep = by_kind(manifests, "Deployment")["sextant-db-manager"]
    container = dep["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[0] == "services.db_manager"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "sextant-tls"
    assert args[args.index("--tls-cert") + 1] == mounts["tls"] + "/tls.crt"
    assert args[args.index("--tls-key") + 1] == mounts["tls"] + "/tls.key"
    env = _env(container)
    assert env["SEXTANT_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "sextant-token", "key": "token"}
    assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "sextant-mariadb"
    assert env["KATIB_MYSQL_DB_HOST"]["value"] == "sextant-mariadb"
    assert container["image"] == "sextant/sextant:latest"

    db = by_kind(manifests, "StatefulSet")["sextant-mariadb"]
    assert db["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    db_env = _env(db["spec"]["template"]["spec"]["containers"][0])
    assert db_env["MARIADB_ROOT_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "sextant-mariadb"
    secrets = by_kind(manifests, "Secret")
    assert set(secrets) == {"sextant-mariadb", "sextant-token"}


def test_controllers_use_tls_token_and_the_kubernetes_runtime(manifests):
    deployments = by_kind(manifests, "Deployment")
    modules = {"sextant-experiment-controller": "services.experiment_controller",
               "sextant-suggestion-controller": "services.suggestion.controller",
               "sextant-trial-controller": "services.trial_controller"}
    for name, module in modules.items():
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        args = container["args"]
        assert args[0] == module
        assert args[args.index("--db-manager") + 1] == "sextant-db-manager.sextant:6789"
        env = _env(container)
        assert env["SEXTANT_TLS_CA"]["value"].startswith("/etc/sextant/tls/")
        assert env["SEXTANT_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "sextant-token"
        runtime = args[args.index("--runtime") + 1] if "--runtime" in args else None
        assert runtime == (None if name == "sextant-experiment-controller" else "kubernetes")

    # Trial pods reach that same DB manager (TLS, token): the wrapped collector gets its CA and
    # token from Secrets in the trial's namespace.
    args = deployments["sextant-trial-controller"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--collector-token-secret") + 1] == "sextant-token"
    assert args[args.index("--collector-ca-secret") + 1] == "sextant-db-manager-ca"
    # So do algorithm pods' early-stopping containers, which read the trials' observation logs.
    assert suggestion_controller_access(deployments["sextant-suggestion-controller"]) == TLS_ACCESS


TLS_ACCESS = DBManagerAccess(token_secret="sextant-token", ca_secret="sextant-db-manager-ca")


def suggestion_controller_access(deployment: dict) -> DBManagerAccess:
    """What the suggestion controller in ``deployment`` gives early-stopping containers."""
    from services.suggestion.controller.__main__ import build_parser
    from sextant.runtime.db_manager_access import from_arguments

    module, *args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert module == "services.suggestion.controller"
    return from_arguments(build_parser().parse_args(args), prefix="early-stopping-")


def test_the_early_stopping_container_gets_the_token_and_ca_and_the_suggestion_container_does_not():
    """The early-stopping service reads observation logs from the DB manager (TLS, token); the
    same Secrets as a trial's collector, in the pod's namespace, win over a registry's env."""
    spec = ServiceSpec(name="exp-random", namespace="ns", algorithm="random", command=[], image="img:1",
                       args=["python", "-m", "x"], persistent=True, early_stopping_image="img:1",
                       early_stopping_args=["python", "-m", "services.suggestion.earlystopping"],
                       env={"SEXTANT_TLS_CA": "/from/the/registry", "TZ": "UTC"})
    objects = k8s_runtime.render_service_objects(spec, access=TLS_ACCESS)
    kubernetes_validate.validate(objects["deployment"], SCHEMA_VERSION, strict=True)
    pod = objects["deployment"]["spec"]["template"]["spec"]
    suggestion, early = pod["containers"]
    env = {e["name"]: e for e in early["env"]}
    assert [e["name"] for e in early["env"]].count("SEXTANT_TLS_CA") == 1
    assert env["SEXTANT_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "sextant-token", "key": "token"}}
    assert env["SEXTANT_TLS_CA"]["value"] == "/etc/sextant/db-manager-ca/ca.crt"
    assert env["TZ"]["value"] == "UTC"
    assert early["volumeMounts"] == [{"name": "sextant-db-manager-ca", "mountPath": "/etc/sextant/db-manager-ca",
                                      "readOnly": True}]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["sextant-db-manager-ca"]["secret"] == {
        "secretName": "sextant-db-manager-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}
    assert "persistentVolumeClaim" in volumes["suggestion-volume"]  # FromVolume's claim kept
    # The suggestion container never talks to the DB manager.
    assert {e["name"]: e["value"] for e in suggestion["env"]} == {
        "SEXTANT_TLS_CA": "/from/the/registry", "TZ": "UTC", "SEXTANT_STATE_DIR": "/opt/katib/data"}
    assert [m["name"] for m in suggestion["volumeMounts"]] == ["suggestion-volume"]

    # On Katib's CRDs the container also gets its store settings; the Secrets come as well.
    owned = replace(spec, owner={"apiVersion": "kubeflow.org/v1beta1", "kind": "Suggestion", "name": "exp",
                                 "uid": "u"})
    early = k8s_runtime.render_service_objects(owned, early_stopping_store=True, access=TLS_ACCESS)[
        "deployment"]["spec"]["template"]["spec"]["containers"][1]
    assert {"SEXTANT_STORE", "SEXTANT_NAMESPACE", "SEXTANT_TOKEN", "SEXTANT_TLS_CA"} <= {e["name"] for e in early["env"]}

    # Without an early-stopping container the pod needs neither Secret.
    plain = ServiceSpec(name="exp-random", namespace="ns", algorithm="random", command=[], image="img:1")
    pod = k8s_runtime.render_service_objects(plain, access=TLS_ACCESS)["deployment"]["spec"]["template"]["spec"]
    assert len(pod["containers"]) == 1 and "volumes" not in pod and "env" not in pod["containers"][0]


def test_registry_config_map_is_a_valid_registry_with_images(manifests):
    cm = by_kind(manifests, "ConfigMap")["sextant-algorithm-registry"]
    registry = Registry.from_dict(yaml.safe_load(cm["data"]["registry.yaml"]), source="configmap")
    packaged = Registry.default()
    assert set(registry.algorithm_names()) >= set(packaged.algorithm_names())
    for name in registry.algorithm_names():
        assert registry.algorithm(name).runnable_on_kubernetes, name
    dep = by_kind(manifests, "Deployment")["sextant-suggestion-controller"]
    container = dep["spec"]["template"]["spec"]["containers"][0]
    mount = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["registry"]
    assert _env(container)["SEXTANT_REGISTRY"]["value"] == mount + "/registry.yaml"


def test_assembly_does_not_mutate_between_calls():
    assert assemble() == copy.deepcopy(assemble())


@pytest.mark.parametrize("deployment", ["sextant-db-manager", "sextant-experiment-controller",
                                        "sextant-suggestion-controller", "sextant-trial-controller"])
def test_container_args_are_flags_the_service_accepts(manifests, deployment):
    import importlib.util
    import sys

    container = by_kind(manifests, "Deployment")[deployment]["spec"]["template"]["spec"]["containers"][0]
    module, *args = container["args"]
    if importlib.util.find_spec(module + ".__main__") is None:
        pytest.skip(f"{module} has no __main__ yet (being written by another area)")
    help_text = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True,
                               timeout=120, cwd=ROOT, check=True).stdout
    for flag in (a for a in args if a.startswith("--")):
        assert flag in help_text, f"{deployment}: {module} does not accept {flag}"
