"""The algorithm registry (katib-config runtime.suggestions / earlyStoppings equivalent)."""

from __future__ import annotations

import sys

import pytest

from sextant.algorithm_registry import DEFAULT_REGISTRY_PATH, Registry, RegistryError

DEFAULT_ALGORITHMS = ["bayesianoptimization", "cmaes", "grid", "hyperband", "mo-tpe", "multivariate-tpe", "nsga2",
                      "pbt", "random", "sobol", "tpe"]


def test_packaged_default():
    registry = Registry.load()
    assert registry.algorithm_names() == DEFAULT_ALGORITHMS
    assert registry.early_stopping_names() == ["asha", "medianstop"]
    assert registry.early_stopping("medianstop").port == 6788
    assert registry.algorithm("tpe").port == 6789
    assert registry.algorithm("nope") is None and registry.early_stopping("nope") is None
    # only the multi-objective services are sent an experiment's extra objectives
    assert [n for n in DEFAULT_ALGORITHMS if registry.algorithm(n).multi_objective] == ["mo-tpe", "nsga2"]
    for name in DEFAULT_ALGORITHMS:
        entry = registry.algorithm(name)
        assert entry.runnable_locally and entry.runnable_on_kubernetes
        assert entry.resources["limits"]["cpu"] == "500m"  # Katib's runtime defaults


def test_local_command_substitutes_python_and_port():
    argv = Registry.load().algorithm("tpe").local_command(port=40123)
    assert argv[0] == sys.executable
    assert argv[-2:] == ["--port", "40123"]
    assert "tpe" in argv and not any("{" in a for a in argv)
    args = Registry.load().algorithm("tpe").container_args()
    assert args[-1] == "6789"


def test_env_and_explicit_path_override(tmp_path, monkeypatch):
    custom = tmp_path / "registry.yaml"
    custom.write_text("suggestions:\n- algorithmName: katib-hyperopt\n  image: ghcr.io/kubeflow/katib/"
                      "suggestion-hyperopt:v0.19.0\nearlyStoppings: []\n")
    monkeypatch.setenv("SEXTANT_REGISTRY", str(custom))
    registry = Registry.load()
    assert registry.algorithm_names() == ["katib-hyperopt"]
    assert not registry.algorithm("katib-hyperopt").runnable_locally
    with pytest.raises(RegistryError, match="no local command"):
        registry.algorithm("katib-hyperopt").local_command(1)
    assert Registry.load(DEFAULT_REGISTRY_PATH).algorithm("random") is not None


def test_last_entry_of_a_name_wins():
    registry = Registry.from_dict({"suggestions": [{"algorithmName": "a", "image": "one"},
                                                   {"algorithmName": "a", "image": "two"}]})
    assert registry.algorithm("a").image == "two"


@pytest.mark.parametrize("text, message", [
    ("suggestions: [", "invalid YAML"),
    ("- a\n", "must be a mapping"),
    ("suggestions:\n- image: x\n", "algorithmName"),
    ("suggestions:\n- algorithmName: ' '\n", "must not be empty"),
    ("suggestions:\n- algorithmName: a\n  comand: [x]\n", "comand"),
])
def test_bad_registry_files_name_the_problem(tmp_path, text, message):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with pytest.raises(RegistryError, match=message):
        Registry.load(path)


def test_missing_registry_file(tmp_path):
    with pytest.raises(RegistryError, match="cannot read"):
        Registry.load(tmp_path / "absent.yaml")
