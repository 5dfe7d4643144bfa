"""The Docker runtime's mapping of a trial's primary container to the engine's create arguments:
command/args/env/workingDir as Kubernetes runs them, resources as Docker limits, host network,
the metrics directory bind mount. Pure (no engine); the containers tests run it for real."""

from __future__ import annotations

import pytest

from sextant.runtime.collector_settings import CollectorSettings, StopRule
from sextant.runtime.container_plan import (
    ContainerSpecError,
    container_name,
    parse_quantity,
    plan_container,
    resource_limits,
    stack_id,
)
from sextant.runtime.docker_jobs import needs_live_collector, unsupported_collection

KATIB_CONTAINER = {
    "name": "training-container",
    "image": "docker.io/kubeflowkatib/pytorch-mnist-cpu:latest",
    "command": ["python3", "/opt/pytorch-mnist/mnist.py"],
    "args": ["--epochs=1", "--lr=0.01"],
    "env": [{"name": "A", "value": "1"}, {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s"}}},
            {"name": "EMPTY"}],
    "workingDir": "/opt/pytorch-mnist",
    "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}, "requests": {"cpu": "250m", "memory": "512Mi"}},
}


def plan(container, **kwargs):
    return plan_container(container, name="c", env=kwargs.pop("env", {"KATIB_TRIAL_NAME": "t1"}),
                          labels=kwargs.pop("labels", {"l": "v"}), **kwargs)


def test_katib_container_maps_to_create_arguments():
    args = plan(KATIB_CONTAINER, binds={"/data/jobs/ns/t1/volumes/metrics": "/var/log/katib"}).create_arguments()
    assert args["image"] == "docker.io/kubeflowkatib/pytorch-mnist-cpu:latest"
    # command replaces the ENTRYPOINT and args the CMD, unchanged (python is the image's python).
    assert args["entrypoint"] == ["python3", "/opt/pytorch-mnist/mnist.py"]
    assert args["command"] == ["--epochs=1", "--lr=0.01"]
    # valueFrom is skipped, a missing value is empty, the runtime's variables come last.
    assert args["environment"] == {"A": "1", "EMPTY": "", "KATIB_TRIAL_NAME": "t1"}
    assert args["working_dir"] == "/opt/pytorch-mnist"
    assert (args["nano_cpus"], args["mem_limit"], args["memswap_limit"]) == (500_000_000, 2**30, 2**30)
    assert (args["cpu_shares"], args["mem_reservation"]) == (256, 512 * 2**20)
    assert args["network_mode"] == "host" and args["labels"] == {"l": "v"} and args["name"] == "c"
    assert args["volumes"] == {"/data/jobs/ns/t1/volumes/metrics": {"bind": "/var/log/katib", "mode": "rw"}}
    assert "device_requests" not in args


def test_only_args_keep_the_image_entrypoint_and_only_command_drops_its_cmd():
    only_args = plan({"image": "i", "args": ["--x=1"]}).create_arguments()
    assert "entrypoint" not in only_args and only_args["command"] == ["--x=1"]
    only_command = plan({"image": "i", "command": ["train"]}).create_arguments()
    assert only_command["entrypoint"] == ["train"] and only_command["command"] == []
    neither = plan({"image": "i"}).create_arguments()
    assert "entrypoint" not in neither and "command" not in neither and "working_dir" not in neither


def test_env_from_the_runtime_wins_over_the_template():
    args = plan({"image": "i", "env": [{"name": "KATIB_TRIAL_NAME", "value": "spoofed"}]}).create_arguments()
    assert args["environment"] == {"KATIB_TRIAL_NAME": "t1"}


@pytest.mark.parametrize(("text", "value"), [
    ("500m", 0.5), ("2", 2), (2, 2), ("1.5", 1.5), ("512Mi", 512 * 2**20), ("1G", 10**9), ("1e3", 1000),
    ("64Ki", 65536)])
def test_kubernetes_quantities(text, value):
    assert float(parse_quantity(text, "f")) == value


@pytest.mark.parametrize("bad", ["lots", "1.5.2", "-1Gi x", "5XB"])
def test_bad_quantities_name_the_field(bad):
    with pytest.raises(ContainerSpecError, match=r"resources.limits.memory: .* is not a Kubernetes quantity"):
        resource_limits({"resources": {"limits": {"memory": bad}}})


def test_limits_gpus_minimum_shares_and_a_reservation_capped_by_the_limit():
    limits = resource_limits({"resources": {"limits": {"nvidia.com/gpu": 2, "memory": "256Mi"},
                                            "requests": {"cpu": "1m", "memory": "1Gi"}}})
    assert limits.gpus == 2 and limits.cpu_shares == 2  # the engine's minimum share
    assert limits.mem_reservation == limits.mem_limit == 256 * 2**20
    args = plan({"image": "i", "resources": {"limits": {"nvidia.com/gpu": "1"}}}).create_arguments()
    request = args["device_requests"][0]
    assert request["Count"] == 1 and request["Capabilities"] == [["gpu"]]
    assert resource_limits({}) == resource_limits({"resources": {}})
    with pytest.raises(ContainerSpecError, match="must be greater than 0"):
        resource_limits({"resources": {"limits": {"cpu": "0"}}})
    with pytest.raises(ContainerSpecError, match="whole number"):
        resource_limits({"resources": {"limits": {"nvidia.com/gpu": "0.5"}}})


def test_a_container_without_image_cannot_run_in_docker():
    with pytest.raises(ContainerSpecError, match="'main': image is required"):
        plan({"name": "main", "command": ["x"]})


def test_names_are_fixed_per_stack_and_trial():
    assert stack_id("/a/.sextant") == stack_id("/a/.sextant") != stack_id("/b/.sextant")
    assert container_name("abc", "default", "exp-1-xyz") == "sextant-abc-default-exp-1-xyz"


def test_collectors_that_watch_the_running_trial_need_the_docker_client():
    after_exit = [CollectorSettings(metrics=("acc",), kind=kind, path="/x/m.log")
                  for kind in ("StdOut", "File", "TensorFlowEvent", "Push", "None")]
    live = [CollectorSettings(metrics=("acc",), kind="PrometheusMetric", url="http://127.0.0.1:8080/metrics"),
            CollectorSettings(metrics=("acc",), kind="Custom", custom_command=("c",)),
            CollectorSettings(metrics=("acc",), stop_rules=(StopRule("acc", "0.5", "less"),))]
    assert [needs_live_collector(c) for c in after_exit + live] == [False] * 5 + [True] * 3
    assert all(unsupported_collection(c, None) is None for c in after_exit)
    assert all(unsupported_collection(c, "/usr/bin/docker") is None for c in live)
    assert "the PrometheusMetric collector needs the docker command-line client" in \
        (unsupported_collection(live[0], None) or "")
    assert (unsupported_collection(live[2], None) or "").startswith("early-stopping rules need")
