"""v1beta1 trialParameters substitution, meta references, configMap files, dialect choice."""

import pytest

from sextant.resources.models import Experiment
from sextant.templates import TemplateError, render_run_spec, template_file
from sextant.templates.trial_parameters import render_trial_spec

TEMPLATE = {
    "apiVersion": "batch/v1", "kind": "Job",
    "metadata": {"labels": {"team": "ml"}, "annotations": {"note": "x"}},
    "spec": {"template": {"spec": {"containers": [{
        "name": "training-container", "image": "img",
        "command": ["python", "train.py", "--lr=${trialParameters.learningRate}",
                    "--name=${trialParameters.trialName}", "--ns=${trialParameters.ns}",
                    "--kind=${trialParameters.kind}/${trialParameters.api}",
                    "--team=${trialParameters.team}", "--note=${trialParameters.note}"]}]}}},
}
PARAMS = [
    {"name": "learningRate", "reference": "lr"},
    {"name": "trialName", "reference": "${trialSpec.Name}"},
    {"name": "ns", "reference": "${trialSpec.Namespace}"},
    {"name": "kind", "reference": "${trialSpec.Kind}"},
    {"name": "api", "reference": "${trialSpec.APIVersion}"},
    {"name": "team", "reference": "${trialSpec.Labels[team]}"},
    {"name": "note", "reference": "${trialSpec.Annotations[note]}"},
]


def test_substitution_and_meta_refs():
    job = render_trial_spec(TEMPLATE, PARAMS, {"lr": '0.01"}'}, "exp-abc", "team-a")
    cmd = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert cmd[2:] == ['--lr=0.01"}', "--name=exp-abc", "--ns=team-a", "--kind=Job/batch/v1",
                       "--team=ml", "--note=x"]
    assert job["metadata"]["name"] == "exp-abc" and job["metadata"]["namespace"] == "team-a"
    assert "${" in TEMPLATE["spec"]["template"]["spec"]["containers"][0]["command"][2]  # not mutated


def test_missing_values_are_errors():
    with pytest.raises(TemplateError, match=r"trialParameters\[0\].reference: 'lr'"):
        render_trial_spec(TEMPLATE, PARAMS, {}, "t", "n")
    with pytest.raises(TemplateError, match=r"\$\{trialParameters.learningRate\}"):
        render_trial_spec(TEMPLATE, PARAMS[1:], {}, "t", "n")
    with pytest.raises(TemplateError, match="no label 'missing'"):
        render_trial_spec(TEMPLATE, [{"name": "x", "reference": "${trialSpec.Labels[missing]}"}], {}, "t", "n")


def _experiment(template, annotations=None):
    return Experiment.model_validate({
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment",
        "metadata": {"name": "exp", "namespace": "ns1", "annotations": annotations or {}},
        "spec": {"objective": {"type": "maximize", "objectiveMetricName": "acc"},
                 "algorithm": {"algorithmName": "random"},
                 "parameters": [{"name": "lr", "parameterType": "double",
                                 "feasibleSpace": {"min": "0.1", "max": "0.2"}}],
                 "trialTemplate": template}})


def test_config_map_file(tmp_path):
    d = tmp_path / "ns1" / "templates-cm"
    d.mkdir(parents=True)
    (d / "job.yaml").write_text("apiVersion: batch/v1\nkind: Job\nspec:\n  template:\n    spec:\n"
                                "      containers:\n      - name: c\n        command: [run, '${trialParameters.l}']\n")
    exp = _experiment({"configMap": {"configMapName": "templates-cm", "configMapNamespace": "ns1",
                                     "templatePath": "job.yaml"},
                       "trialParameters": [{"name": "l", "reference": "lr"}], "primaryContainerName": "c"})
    job = render_run_spec(exp, "exp-1", [{"name": "lr", "value": "0.15"}], directory=tmp_path)
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["run", "0.15"]
    assert job["metadata"] == {"name": "exp-1", "namespace": "ns1"}
    with pytest.raises(TemplateError, match="templatePath"):
        template_file("templates-cm", "ns1", "../x.yaml", tmp_path)
    with pytest.raises(TemplateError, match="not found"):
        template_file("other", "ns1", "job.yaml", tmp_path)


def test_v1alpha3_annotation_selects_go_template():
    raw = "kind: Job\nmetadata:\n  name: {{.Trial}}\nspec:\n  args:{{range .HyperParameters}}\n  - {{.Name}}={{.Value}}{{end}}\n"
    exp = _experiment({"trialParameters": []}, {"sextant.io/v1alpha3-raw-template": raw})
    job = render_run_spec(exp, "exp-2", {"--lr": "0.1"})
    assert job["spec"]["args"] == ["--lr=0.1"] and job["metadata"]["namespace"] == "ns1"
