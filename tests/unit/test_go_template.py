"""The Go text/template subset used by v1alpha3 trial templates."""

import pytest
import yaml

from sextant.templates import render_go_job
from sextant.templates.go_template import TemplateError, render

SEED = """apiVersion: batch/v1
kind: Job
metadata:
  name: {{.Trial}}
  namespace: {{.NameSpace}}
spec:
  template:
    spec:
      containers:
      - name: {{.Trial}}
        image: docker.io/katib/mxnet-mnist-example
        command:
        - "python"
        - "/mxnet/example/image-classification/train_mnist.py"
        - "--batch-size=64"
        {{- with .HyperParameters}}
        {{- range .}}
        - "{{.Name}}={{.Value}}"
        {{- end}}
        {{- end}}
      restartPolicy: Never"""


def test_seed_template_renders_like_the_seed_trial():
    job = render_go_job(SEED, trial_name="random-example-fm2g6jpj", experiment_name="random-example",
                        namespace="kubeflow",
                        assignments={"--lr": "0.027435456064371484", "--num-layers": "4", "--optimizer": "sgd"})
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert job["metadata"] == {"name": "random-example-fm2g6jpj", "namespace": "kubeflow"}
    assert container["name"] == "random-example-fm2g6jpj"
    assert container["command"] == ["python", "/mxnet/example/image-classification/train_mnist.py",
                                    "--batch-size=64", "--lr=0.027435456064371484", "--num-layers=4",
                                    "--optimizer=sgd"]


def test_trim_markers_and_text():
    assert render("a  {{- .X -}}  b", {"X": 1}) == "a1b"
    assert render("a {{ .X }} b", {"X": "x"}) == "a x b"
    assert render("a\n  {{- /* note */}}\nb", {}) == "a\nb"


def test_with_else_range_else_if():
    tpl = "{{with .H}}[{{range .}}{{.Name}};{{end}}]{{else}}none {{.E}}{{end}}"
    assert render(tpl, {"H": [{"Name": "a"}, {"Name": "b"}], "E": "e"}) == "[a;b;]"
    assert render(tpl, {"H": [], "E": "e"}) == "none e"
    assert render("{{range .H}}x{{else}}empty{{end}}", {"H": []}) == "empty"
    assert render('{{if .F}}yes{{else}}{{"no"}}{{end}}', {"F": False}) == "no"
    assert render("{{.A.B}}", {"A": {"B": 3}}) == "3"


@pytest.mark.parametrize("tpl, fragment", [
    ("{{printf \"%s\" .Trial}}", "function 'printf'"),
    ("{{.Trial | lower}}", "pipelines"),
    ("{{$x := .Trial}}", "variables"),
    ("{{range .H}}", "without {{end}}"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{define \"x\"}}{{end}}", "'define' is not supported"),
    ("{{if .A}}a{{else if .B}}b{{end}}", "{{else if .B}}"),
    ("{{.Nope}}", "can't evaluate field Nope"),
    ("text {{ .Trial", "unclosed action"),
    ("{{index .H 0}}", "function 'index'"),
])
def test_errors_name_the_construct(tpl, fragment):
    with pytest.raises(TemplateError) as err:
        render(tpl, {"Trial": "t", "H": []})
    assert fragment in str(err.value)
    assert "line 1" in str(err.value)


def test_error_line_number():
    with pytest.raises(TemplateError, match="line 3"):
        render("a\nb\n{{len .H}}", {"H": []})


def test_invalid_yaml_after_render():
    with pytest.raises(TemplateError, match="not valid YAML"):
        render_go_job("a: [{{.Trial}}", trial_name="t", experiment_name="e", namespace="n", assignments={})
    assert yaml.safe_load("a: 1")
