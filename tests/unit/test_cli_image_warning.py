"""`apply` and `run` warn when this machine's stack runs trials as local processes and the trial
template names an image that will therefore not be used."""

from __future__ import annotations

from sextant.cli.files import trial_images, warn_unused_images


def _experiment(*containers: dict[str, str]) -> dict[str, object]:
    job = {"kind": "Job", "spec": {"template": {"spec": {"containers": list(containers)}}}}
    return {"metadata": {"name": "mnist"}, "spec": {"trialTemplate": {"trialSpec": job}}}


def test_images_are_found_in_any_pod_template():
    pytorch = {"kind": "PyTorchJob", "spec": {"pytorchReplicaSpecs": {
        "Master": {"template": {"spec": {"containers": [{"name": "pytorch", "image": "a/train:1"}]}}},
        "Worker": {"template": {"spec": {"containers": [{"name": "pytorch", "image": "a/train:1"},
                                                        {"name": "side", "image": "b/proxy"}]}}}}}}
    assert trial_images({"spec": {"trialTemplate": {"trialSpec": pytorch}}}) == ["a/train:1", "b/proxy"]
    assert trial_images(_experiment({"name": "c", "command": "python"})) == []
    assert trial_images({"spec": {}}) == []


def test_the_warning_names_the_experiment_the_image_and_the_fix(capsys):
    warn_unused_images(_experiment({"name": "c", "image": "docker.io/kubeflowkatib/pytorch-mnist"}), "local")
    err = capsys.readouterr().err
    assert err.startswith("Warning: experiment mnist: its trials name the image docker.io/kubeflowkatib/pytorch-mnist")
    assert "--runtime docker" in err


def test_no_warning_where_the_image_is_used_or_unknown(capsys):
    for runtime in ("docker", "auto", None):  # None: a remote server, which decides for itself
        warn_unused_images(_experiment({"name": "c", "image": "x"}), runtime)
    warn_unused_images(_experiment({"name": "c"}), "local")
    assert capsys.readouterr().err == ""
