"""KubernetesRuntime with the real kubernetes client against the kmock API emulator.

kmock stores objects but runs nothing, so the tests play the Job / Deployment controllers by
patching ``status`` through the API, as the real controllers would.
"""

from __future__ import annotations

import pytest
from kubernetes import client

from sextant.runtime import make_runtime
from sextant.runtime.base import JobPhase, JobSpec, ServiceSpec
from sextant.runtime.collector_settings import CollectorSettings
from sextant.runtime.db_manager_access import DBManagerAccess
from sextant.runtime.job_conditions import UnsupportedCondition
from sextant.runtime.kubernetes import KubernetesRuntime
from tests.integration.kmock_server import kmock_cluster

NS = "team-a"


@pytest.fixture(scope="module")
def cluster():
    with kmock_cluster() as c:
        yield c


@pytest.fixture
def runtime(cluster) -> KubernetesRuntime:
    rt = make_runtime("kubernetes", api_client=cluster.api_client(), owner_references=True)
    assert isinstance(rt, KubernetesRuntime)
    return rt


def batch_job(command=("python", "train.py"), args=("--lr", "0.1")) -> dict:
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"labels": {"from-template": "yes"}},
        "spec": {"template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "training-container", "image": "trainer:1",
                            "command": list(command), "args": list(args)}],
        }}},
    }


def job_spec(name: str, run_spec: dict | None = None, **kw) -> JobSpec:
    defaults = dict(
        name=name, namespace=NS, run_spec=run_spec or batch_job(),
        primary_container_name="training-container",
        collector=CollectorSettings(metrics=("accuracy",), trial=name, db_manager="sextant-db-manager:6789"),
        labels={"katib.kubeflow.org/experiment": "exp"},
        owner={"apiVersion": "kubeflow.org/v1beta1", "kind": "Trial", "name": name, "uid": "uid-1"},
        env={"SEXTANT_TOKEN_FILE": "/var/run/sextant/token"},
    )
    defaults.update(kw)
    return JobSpec(**defaults)


def set_job_status(cluster, name: str, status: dict) -> None:
    client.BatchV1Api(cluster.api_client()).patch_namespaced_job_status(name, NS, {"status": status})


def test_start_job_creates_the_rendered_job(cluster, runtime):
    status = runtime.start_job(job_spec("exp-aaaa1111"))
    assert status.phase == JobPhase.PENDING
    job = cluster.stored("batch", "v1", "jobs", NS)["exp-aaaa1111"]
    meta = job["metadata"]
    assert meta["name"] == "exp-aaaa1111" and meta["namespace"] == NS
    assert meta["labels"]["katib.kubeflow.org/trial"] == "exp-aaaa1111"
    assert meta["labels"]["katib.kubeflow.org/experiment"] == "exp"
    assert meta["labels"]["from-template"] == "yes"
    assert meta["ownerReferences"] == [{"apiVersion": "kubeflow.org/v1beta1", "kind": "Trial",
                                        "name": "exp-aaaa1111", "uid": "uid-1", "controller": True,
                                        "blockOwnerDeletion": True}]
    pod = job["spec"]["template"]
    assert pod["metadata"]["labels"]["katib.kubeflow.org/trial"] == "exp-aaaa1111"
    container = pod["spec"]["containers"][0]
    assert container["command"] == [
        "python", "-m", "services.metrics_collector", "--metrics", "accuracy", "--objective-type", "",
        "--dialect", "v1beta1", "--trial", "exp-aaaa1111", "--db-manager", "sextant-db-manager:6789",
        "--kind", "StdOut", "--", "python", "train.py", "--lr", "0.1"]
    assert "args" not in container
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {"KATIB_TRIAL_NAME": "exp-aaaa1111", "SEXTANT_TOKEN_FILE": "/var/run/sextant/token",
                   "SEXTANT_TERMINATION_LOG": "/dev/termination-log"}
    # A collector that can never succeed fails the Job at once, without pod retries.
    assert job["spec"]["podFailurePolicy"]["rules"] == [{"action": "FailJob", "onExitCodes": {
        "containerName": "training-container", "operator": "In", "values": [86]}}]


def test_start_job_is_idempotent(cluster, runtime):
    runtime.start_job(job_spec("exp-idem0001"))
    set_job_status(cluster, "exp-idem0001", {"startTime": "2024-01-01T00:00:00Z", "active": 1})
    again = runtime.start_job(job_spec("exp-idem0001"))
    assert again.phase == JobPhase.RUNNING
    assert again.start_time == "2024-01-01T00:00:00Z"


def test_job_status_success_failure_running(cluster, runtime):
    for name in ("exp-succ0001", "exp-fail0001"):
        runtime.start_job(job_spec(name))
        set_job_status(cluster, name, {"startTime": "2024-01-01T00:00:00Z", "active": 1})
        assert runtime.job_status(NS, name).phase == JobPhase.RUNNING

    set_job_status(cluster, "exp-succ0001", {"completionTime": "2024-01-01T00:05:00Z", "active": 0, "conditions": [
        {"type": "SuccessCriteriaMet", "status": "True"},
        {"type": "Complete", "status": "True", "reason": "Completed", "message": "Job completed"}]})
    done = runtime.job_status(NS, "exp-succ0001")
    assert (done.phase, done.reason, done.message) == (JobPhase.SUCCEEDED, "Completed", "Job completed")
    assert done.completion_time == "2024-01-01T00:05:00Z"

    # Failure is checked first, even if a success condition is also present.
    set_job_status(cluster, "exp-fail0001", {"conditions": [
        {"type": "Complete", "status": "True", "reason": "Completed"},
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
         "message": "Job has reached the specified backoff limit"}]})
    failed = runtime.job_status(NS, "exp-fail0001")
    assert (failed.phase, failed.reason) == (JobPhase.FAILED, "BackoffLimitExceeded")
    assert failed.message == "Job has reached the specified backoff limit"


def test_a_collector_that_can_never_succeed_fails_the_trial_with_its_cause(cluster, runtime):
    """Issue 21 on Kubernetes: the collector's termination message in the trial's pod turns the
    Job's failure (its pod failure policy) into MetricsCollectorFailed with the cause."""
    runtime.start_job(job_spec("exp-coll0001", collector=CollectorSettings(
        metrics=("accuracy",), trial="exp-coll0001", db_manager="sextant-db-manager:6789", kind="File",
        path="/")))
    core = client.CoreV1Api(cluster.api_client())
    core.create_namespaced_pod(NS, {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "exp-coll0001-x7k2p", "labels": {"katib.kubeflow.org/trial": "exp-coll0001"}},
        "spec": {"containers": [{"name": "training-container", "image": "trainer:1"}]}})
    core.patch_namespaced_pod_status("exp-coll0001-x7k2p", NS, {"status": {"containerStatuses": [
        {"name": "training-container", "ready": False, "restartCount": 0, "image": "trainer:1", "imageID": "",
         "state": {"terminated": {"exitCode": 86, "reason": "Error", "message":
                                  "MetricsCollectorFailed: the metrics collector cannot read /: Is a directory"}}}]}})
    set_job_status(cluster, "exp-coll0001", {"conditions": [
        {"type": "Failed", "status": "True", "reason": "PodFailurePolicy",
         "message": "Container training-container for pod team-a/exp-coll0001-x7k2p failed with exit code 86 "
                    "matching FailJob rule at index 0"}]})
    status = runtime.job_status(NS, "exp-coll0001")
    assert (status.phase, status.reason) == (JobPhase.FAILED, "MetricsCollectorFailed")
    assert status.message == "the metrics collector cannot read /: Is a directory"
    # Another trial's failure keeps its own reason: the pods are matched by the trial label.
    runtime.start_job(job_spec("exp-othr0001"))
    set_job_status(cluster, "exp-othr0001", {"conditions": [
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "backoff"}]})
    assert runtime.job_status(NS, "exp-othr0001").reason == "BackoffLimitExceeded"


def test_custom_conditions_are_kept_on_the_object_for_a_new_instance(cluster, runtime):
    spec = job_spec("exp-cust0001", success_condition='status.conditions.#(type=="Done")#',
                    failure_condition='status.conditions.#(type=="Broken")#')
    runtime.start_job(spec)
    set_job_status(cluster, "exp-cust0001", {"conditions": [{"type": "Complete", "status": "True"}]})
    fresh = KubernetesRuntime(cluster.api_client())
    assert fresh.job_status(NS, "exp-cust0001").phase == JobPhase.PENDING
    set_job_status(cluster, "exp-cust0001", {"conditions": [{"type": "Done", "status": "True", "reason": "Yes"}]})
    assert fresh.job_status(NS, "exp-cust0001").phase == JobPhase.SUCCEEDED


def test_unsupported_condition_is_rejected_before_creating(cluster, runtime):
    with pytest.raises(UnsupportedCondition, match="status.conditions.@reverse"):
        runtime.start_job(job_spec("exp-bad00001", success_condition="status.conditions.@reverse",
                                   failure_condition=None))
    assert "exp-bad00001" not in cluster.stored("batch", "v1", "jobs", NS)


def test_primary_container_without_command_is_a_clear_error(runtime):
    spec = job_spec("exp-nocmd001", run_spec=batch_job(command=()))
    with pytest.raises(ValueError, match="no command"):
        runtime.start_job(spec)


def test_stop_marks_killed_and_delete_removes(cluster, runtime):
    runtime.start_job(job_spec("exp-stop0001"))
    runtime.stop_job(NS, "exp-stop0001")
    job = cluster.stored("batch", "v1", "jobs", NS)["exp-stop0001"]
    assert job["spec"]["activeDeadlineSeconds"] == 1
    stopped = runtime.job_status(NS, "exp-stop0001")
    assert (stopped.phase, stopped.reason) == (JobPhase.FAILED, "Killed")
    runtime.delete_job(NS, "exp-stop0001")
    assert "exp-stop0001" not in cluster.stored("batch", "v1", "jobs", NS)
    assert runtime.job_status(NS, "exp-stop0001").phase == JobPhase.NOT_FOUND
    runtime.delete_job(NS, "exp-stop0001")  # absent: no-op


def test_tfjob_through_custom_objects(cluster, runtime):
    tfjob = {
        "apiVersion": "kubeflow.org/v1", "kind": "TFJob",
        "spec": {"tfReplicaSpecs": {
            "Chief": {"replicas": 1, "template": {"spec": {"containers": [
                {"name": "tensorflow", "image": "tf:1", "command": ["python", "mnist.py"]}]}}},
            "Worker": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "tensorflow", "image": "tf:1", "command": ["python", "mnist.py"]}]}}},
        }},
    }
    runtime.start_job(job_spec("exp-tfjob001", run_spec=tfjob, primary_container_name="tensorflow"))
    stored = cluster.stored("kubeflow.org", "v1", "tfjobs", NS)["exp-tfjob001"]
    chief = stored["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]
    worker = stored["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    assert chief["command"][:3] == ["python", "-m", "services.metrics_collector"]
    assert worker["command"] == ["python", "mnist.py"]  # only the primary (chief) pod reports

    custom = client.CustomObjectsApi(cluster.api_client())
    assert runtime.job_status(NS, "exp-tfjob001").phase == JobPhase.RUNNING
    custom.patch_namespaced_custom_object_status("kubeflow.org", "v1", NS, "tfjobs", "exp-tfjob001", {
        "status": {"conditions": [{"type": "Created", "status": "True"},
                                  {"type": "Succeeded", "status": "True", "reason": "TFJobSucceeded"}]}})
    # A new instance (restarted controller) finds the kind among the configured trial resources.
    fresh = KubernetesRuntime(cluster.api_client())
    done = fresh.job_status(NS, "exp-tfjob001")
    assert (done.phase, done.reason) == (JobPhase.SUCCEEDED, "TFJobSucceeded")
    fresh.stop_job(NS, "exp-tfjob001")
    stored = cluster.stored("kubeflow.org", "v1", "tfjobs", NS)["exp-tfjob001"]
    assert stored["spec"]["runPolicy"]["activeDeadlineSeconds"] == 1
    fresh.delete_job(NS, "exp-tfjob001")
    assert "exp-tfjob001" not in cluster.stored("kubeflow.org", "v1", "tfjobs", NS)


def service_spec(**kw) -> ServiceSpec:
    defaults = dict(
        name="exp-tpe", namespace=NS, algorithm="tpe", command=["python", "-m", "x"],
        image="sextant/sextant:latest",
        args=["python", "-m", "services.suggestion.algorithms", "--algorithm", "tpe", "--port", "6789"],
        labels={"team": "a"},
        owner={"apiVersion": "kubeflow.org/v1beta1", "kind": "Suggestion", "name": "exp", "uid": "uid-s"},
    )
    defaults.update(kw)
    return ServiceSpec(**defaults)


def test_service_deployment_and_service_as_katib(cluster, runtime):
    status = runtime.ensure_service(service_spec(early_stopping_image="sextant/sextant:latest",
                                                 early_stopping_args=["python", "-m", "es"]))
    assert status.exists and not status.ready
    assert status.address == f"exp-tpe.{NS}:6789"
    assert status.early_stopping_address == f"exp-tpe.{NS}:6788"
    dep = cluster.stored("apps", "v1", "deployments", NS)["exp-tpe"]
    svc = cluster.stored("", "v1", "services", NS)["exp-tpe"]
    labels = {"team": "a", "katib.kubeflow.org/deployment": "exp-tpe", "katib.kubeflow.org/experiment": "exp",
              "katib.kubeflow.org/suggestion": "exp", "sidecar.istio.io/inject": "false"}
    assert dep["spec"]["selector"]["matchLabels"] == labels
    assert dep["spec"]["template"]["metadata"]["labels"] == labels
    assert dep["metadata"]["ownerReferences"][0]["kind"] == "Suggestion"
    assert svc["metadata"]["ownerReferences"][0]["uid"] == "uid-s"
    suggestion, early = dep["spec"]["template"]["spec"]["containers"]
    assert suggestion["name"] == "suggestion"
    assert suggestion["ports"] == [{"containerPort": 6789, "name": "suggestion-api"}]
    assert suggestion["readinessProbe"] == {"grpc": {"port": 6789, "service": "manager.v1beta1.Suggestion"},
                                            "initialDelaySeconds": 10, "periodSeconds": 10}
    assert suggestion["livenessProbe"] == {"grpc": {"port": 6789, "service": "manager.v1beta1.Suggestion"},
                                           "initialDelaySeconds": 10, "periodSeconds": 120,
                                           "failureThreshold": 12}
    assert suggestion["resources"]["limits"] == {"cpu": "500m", "memory": "100Mi", "ephemeral-storage": "5Gi"}
    assert suggestion["args"][-4:] == ["--algorithm", "tpe", "--port", "6789"]
    assert early["name"] == "early-stopping"
    assert early["ports"] == [{"containerPort": 6788, "name": "earlystop-api"}]
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["selector"] == labels
    assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("suggestion-api", 6789),
                                                                      ("earlystop-api", 6788)]

    # The Deployment controller's job, played by the test: Available=True means ready.
    client.AppsV1Api(cluster.api_client()).patch_namespaced_deployment_status("exp-tpe", NS, {"status": {
        "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]}})
    assert runtime.ensure_service(service_spec()).ready  # idempotent: 409s are "exists"

    runtime.delete_service(NS, "exp-tpe")
    assert "exp-tpe" not in cluster.stored("apps", "v1", "deployments", NS)
    assert "exp-tpe" not in cluster.stored("", "v1", "services", NS)
    assert runtime.service_status(NS, "exp-tpe").exists is False
    runtime.delete_service(NS, "exp-tpe")  # absent: no-op


def test_early_stopping_on_katibs_crds_gets_its_own_account_and_role(cluster, runtime):
    # Trials are Katib's custom resources (owner_references=True): the early-stopping container
    # updates them itself, so the Suggestion gets an account and Role as Katib gives it.
    spec = service_spec(name="exp-es", algorithm="tpe", early_stopping_image="sextant/sextant:latest",
                        early_stopping_args=["python", "-m", "services.suggestion.earlystopping"],
                        env={"SEXTANT_STORE": "grpc"})
    runtime.ensure_service(spec)
    owner = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Suggestion", "name": "exp", "uid": "uid-s",
             "controller": True, "blockOwnerDeletion": True}
    account = cluster.stored("", "v1", "serviceaccounts", NS)["exp-es"]
    role = cluster.stored("rbac.authorization.k8s.io", "v1", "roles", NS)["exp-es"]
    binding = cluster.stored("rbac.authorization.k8s.io", "v1", "rolebindings", NS)["exp-es"]
    for obj in (account, role, binding):
        assert obj["metadata"]["ownerReferences"] == [owner]  # deleted with the Suggestion
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "sextant"
    assert role["rules"] == [
        {"apiGroups": ["kubeflow.org"], "resources": ["trials"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["kubeflow.org"], "resources": ["trials/status"], "verbs": ["update"]}]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "exp-es"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "exp-es", "namespace": NS}]
    pod = cluster.stored("apps", "v1", "deployments", NS)["exp-es"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "exp-es"
    suggestion, early = pod["containers"]
    assert early["args"] == ["python", "-m", "services.suggestion.earlystopping"]
    env = {e["name"]: e["value"] for e in early["env"]}  # later entries win, as in Kubernetes
    assert env["SEXTANT_STORE"] == "kubernetes" and env["SEXTANT_NAMESPACE"] == NS
    assert {e["name"]: e["value"] for e in suggestion["env"]} == {"SEXTANT_STORE": "grpc"}

    # A restarted controller ensures the same service: existing objects are kept, nothing fails.
    client.RbacAuthorizationV1Api(cluster.api_client()).patch_namespaced_role(
        "exp-es", NS, {"metadata": {"annotations": {"edited": "by-an-admin"}}})
    restarted = make_runtime("kubernetes", api_client=cluster.api_client(), owner_references=True)
    assert restarted.ensure_service(spec).exists
    kept = cluster.stored("rbac.authorization.k8s.io", "v1", "roles", NS)["exp-es"]
    assert kept["metadata"]["annotations"] == {"edited": "by-an-admin"}
    restarted.delete_service(NS, "exp-es")


def test_early_stopping_without_katibs_crds_needs_no_account(cluster):
    # With the DB manager as the store the early-stopping service never calls the Kubernetes API.
    plain = KubernetesRuntime(cluster.api_client())
    plain.ensure_service(service_spec(name="exp-es-db", early_stopping_image="sextant/sextant:latest"))
    pod = cluster.stored("apps", "v1", "deployments", NS)["exp-es-db"]["spec"]["template"]["spec"]
    assert "serviceAccountName" not in pod
    assert "env" not in pod["containers"][1]
    assert "exp-es-db" not in cluster.stored("", "v1", "serviceaccounts", NS)
    assert "exp-es-db" not in cluster.stored("rbac.authorization.k8s.io", "v1", "roles", NS)
    plain.delete_service(NS, "exp-es-db")


def test_the_early_stopping_container_gets_the_runtimes_db_manager_access(cluster):
    # The suggestion controller's --early-stopping-token-secret / --early-stopping-ca-secret:
    # medianstop reads observation logs from a DB manager serving TLS with a token.
    access = DBManagerAccess(token_secret="sextant-token", ca_secret="sextant-db-manager-ca")
    with_access = KubernetesRuntime(cluster.api_client(), db_manager_access=access)
    with_access.ensure_service(service_spec(name="exp-es-tls", early_stopping_image="sextant/sextant:latest"))
    pod = cluster.stored("apps", "v1", "deployments", NS)["exp-es-tls"]["spec"]["template"]["spec"]
    suggestion, early = pod["containers"]
    assert {e["name"] for e in early["env"]} == {"SEXTANT_TOKEN", "SEXTANT_TLS_CA"}
    assert [m["name"] for m in early["volumeMounts"]] == ["sextant-db-manager-ca"]
    assert [v["secret"]["secretName"] for v in pod["volumes"]] == ["sextant-db-manager-ca"]
    assert "env" not in suggestion and "volumeMounts" not in suggestion
    with_access.delete_service(NS, "exp-es-tls")


def katib_deployment(name: str) -> dict:
    """An algorithm Deployment as Katib's controller creates it: Katib's images, Katib's labels,
    no ``app.kubernetes.io/managed-by: sextant``."""
    labels = {"katib.kubeflow.org/deployment": name, "katib.kubeflow.org/experiment": "exp",
              "katib.kubeflow.org/suggestion": "exp"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels}, "spec": {
        "replicas": 1, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
            "containers": [
                {"name": "suggestion", "image": "docker.io/kubeflowkatib/suggestion-hyperopt:v0.19.0",
                 "ports": [{"name": "suggestion-api", "containerPort": 6789}]},
                {"name": "early-stopping", "image": "docker.io/kubeflowkatib/earlystopping-medianstop:v0.19.0",
                 "ports": [{"name": "earlystop-api", "containerPort": 6788}]}]}}}}


def test_katibs_early_stopping_service_is_given_the_katib_db_manager_address(cluster):
    """At the switch Sextant keeps the algorithm Deployment Katib's controller created; its
    medianstop dials the DB manager in plaintext with no token, so the suggestion controller must
    hand it the read-only Katib port instead of Sextant's own DB manager address."""
    katib_address = "katib-db-manager.kubeflow:6789"
    apps = client.AppsV1Api(cluster.api_client())
    apps.create_namespaced_deployment(NS, katib_deployment("exp-katib-es"))
    runtime = KubernetesRuntime(cluster.api_client(), owner_references=True,
                                katib_db_manager_address=katib_address)
    status = runtime.ensure_service(service_spec(name="exp-katib-es", early_stopping_image="sextant/sextant:latest"))
    kept = cluster.stored("apps", "v1", "deployments", NS)["exp-katib-es"]
    assert kept["spec"]["template"]["spec"]["containers"][1]["image"].endswith("earlystopping-medianstop:v0.19.0")
    assert status.early_stopping_address == f"exp-katib-es.{NS}:6788"
    assert status.db_manager_address == katib_address
    # Without the setting, as before: the controller's own address.
    assert KubernetesRuntime(cluster.api_client()).service_status(NS, "exp-katib-es").db_manager_address is None

    # A Deployment Sextant created reads from the controller's own DB manager address.
    runtime.ensure_service(service_spec(name="exp-own-es", early_stopping_image="sextant/sextant:latest"))
    own = runtime.service_status(NS, "exp-own-es")
    assert own.early_stopping_address and own.db_manager_address is None
    runtime.delete_service(NS, "exp-own-es")
    runtime.delete_service(NS, "exp-katib-es")


def test_from_volume_service_keeps_its_claim(cluster, runtime):
    runtime.ensure_service(service_spec(name="exp-pbt", algorithm="pbt", persistent=True, resources={
        "limits": {"memory": "1Gi"}}))
    pvc = cluster.stored("", "v1", "persistentvolumeclaims", NS)["exp-pbt"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    pod = cluster.stored("apps", "v1", "deployments", NS)["exp-pbt"]["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "suggestion-volume", "persistentVolumeClaim": {"claimName": "exp-pbt"}}]
    container = pod["containers"][0]
    assert container["volumeMounts"] == [{"name": "suggestion-volume", "mountPath": "/opt/katib/data"}]
    assert container["resources"] == {"limits": {"memory": "1Gi"}}
    assert len(pod["containers"]) == 1
    runtime.delete_service(NS, "exp-pbt", keep_state=True)
    assert "exp-pbt" in cluster.stored("", "v1", "persistentvolumeclaims", NS)
    assert "exp-pbt" not in cluster.stored("apps", "v1", "deployments", NS)
    runtime.delete_service(NS, "exp-pbt")
    assert "exp-pbt" not in cluster.stored("", "v1", "persistentvolumeclaims", NS)


def test_new_runtime_instance_finds_and_cleans_up(cluster):
    ns = "cleanup-ns"
    first = KubernetesRuntime(cluster.api_client())
    first.start_job(job_spec("exp-left0001", namespace=ns))
    first.ensure_service(service_spec(name="exp-random", algorithm="random", namespace=ns))
    # Something Sextant did not create must survive the cleanup.
    client.BatchV1Api(cluster.api_client()).create_namespaced_job(ns, {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "not-ours", "namespace": ns},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}})

    restarted = make_runtime("kubernetes", api_client=cluster.api_client())
    assert restarted.list_jobs(ns) == ["exp-left0001"]
    assert restarted.list_services(ns) == ["exp-random"]
    # across namespaces, for the controllers' sweep of what deleted resources left behind
    assert (ns, "exp-left0001") in restarted.job_keys() and (ns, "not-ours") not in restarted.job_keys()
    owned = [o for o in restarted.owned_services() if o.namespace == ns]
    assert [(o.name, o.suggestion) for o in owned] == [("exp-random", "exp")]
    for name in restarted.list_jobs(ns):
        restarted.delete_job(ns, name)
    for name in restarted.list_services(ns):
        restarted.delete_service(ns, name)
    assert set(cluster.stored("batch", "v1", "jobs", ns)) == {"not-ours"}
    assert cluster.stored("apps", "v1", "deployments", ns) == {}
    assert cluster.stored("", "v1", "services", ns) == {}


def test_make_runtime_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="must be one of local, docker, auto, kubernetes"):
        make_runtime("podman")


def test_owner_references_are_dropped_unless_the_owners_live_in_the_cluster(cluster):
    # Sextant's Trials/Suggestions live in the DB manager: a reference to an object the cluster
    # does not have would make Kubernetes' garbage collector delete the job at once.
    plain = KubernetesRuntime(cluster.api_client())
    plain.start_job(job_spec("exp-noown001"))
    plain.ensure_service(service_spec(name="exp-grid", algorithm="grid"))
    assert "ownerReferences" not in cluster.stored("batch", "v1", "jobs", NS)["exp-noown001"]["metadata"]
    assert "ownerReferences" not in cluster.stored("apps", "v1", "deployments", NS)["exp-grid"]["metadata"]
    plain.delete_job(NS, "exp-noown001")
    plain.delete_service(NS, "exp-grid")
