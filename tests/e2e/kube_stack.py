"""A real local stack for the Kubernetes API tests (kubectl, the ``kubernetes`` client, Katib's
SDK): started with ``sextant up --detach`` in a temporary data directory, one per test module,
and reached only through the kubeconfig ``sextant kubeconfig`` names."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import textwrap
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.e2e.local_stack import ROOT, cli_env, run_cli

KUBECTL = Path(sys.executable).parent / "kubectl"


@dataclass
class KubeStack:
    data_dir: Path
    kubeconfig: Path

    def config(self) -> dict:
        return yaml.safe_load(self.kubeconfig.read_text())

    @property
    def server(self) -> str:
        return self.config()["clusters"][0]["cluster"]["server"]

    @property
    def token(self) -> str:
        return self.config()["users"][0]["user"]["token"]

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.data_dir / "tls" / "ca.crt"))

    def request(self, method: str, path: str, body: dict | None = None, *, token: str | None = "",
                headers: dict[str, str] | None = None) -> tuple[int, dict, dict[str, str]]:
        """(status, JSON body, headers) of one HTTPS request; ``token=None`` sends none."""
        sent = {"Accept": "application/json", **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token or self.token}"
        data = json.dumps(body).encode() if body is not None else None
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.server + path, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(req, context=self.ssl_context(), timeout=60) as reply:  # noqa: S310
                return reply.status, json.loads(reply.read() or b"{}"), dict(reply.headers)
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}"), dict(err.headers)


def start_kube_stack(data_dir: Path) -> KubeStack:
    up = run_cli(data_dir, "up", "--detach", "--port", "0", "--timeout", "120", timeout=180)
    assert up.returncode == 0, f"sextant up failed:\n{up.stdout}\n{up.stderr}"
    path = run_cli(data_dir, "kubeconfig")
    assert path.returncode == 0, path.stderr
    return KubeStack(data_dir, Path(path.stdout.strip()))


def stop_kube_stack(stack: KubeStack) -> None:
    run_cli(stack.data_dir, "down", timeout=120)


def kube_env(stack: KubeStack, home: Path, **extra: str) -> dict[str, str]:
    """A fresh HOME (kubectl caches discovery there) and the stack's kubeconfig."""
    home.mkdir(parents=True, exist_ok=True)
    return cli_env({"HOME": str(home), "KUBECONFIG": str(stack.kubeconfig), **extra})


def trivial_experiment(name: str, *, max_trials: int = 2, parallel: int = 2, namespace: str = "default",
                       algorithm: str = "random", resume_policy: str | None = None) -> str:
    """The YAML of a small Experiment whose trials run examples/trainers/trivial.py (a second each)."""
    text = textwrap.dedent(f"""\
        apiVersion: kubeflow.org/v1beta1
        kind: Experiment
        metadata:
          name: {name}
          namespace: {namespace}
        spec:
          objective:
            type: maximize
            objectiveMetricName: score
          algorithm:
            algorithmName: {algorithm}
          maxTrialCount: {max_trials}
          parallelTrialCount: {parallel}
          maxFailedTrialCount: 1
          parameters:
          - name: x
            parameterType: double
            feasibleSpace: {{min: "0.0", max: "1.0"}}
          trialTemplate:
            primaryContainerName: training-container
            trialParameters:
            - name: x
              reference: x
            trialSpec:
              apiVersion: batch/v1
              kind: Job
              spec:
                template:
                  spec:
                    containers:
                    - name: training-container
                      image: docker.io/library/python:3.12
                      command: ["python", "examples/trainers/trivial.py", "--x=${{trialParameters.x}}"]
                    restartPolicy: Never
        """)
    if resume_policy:
        text = text.replace("  maxFailedTrialCount: 1\n", f"  maxFailedTrialCount: 1\n  resumePolicy: {resume_policy}\n")
    return text


# A second metric beside trivial.py's score, which rises with x (score peaks at x = 0.5): on
# [0, 0.5] the two objectives pull apart, so the Pareto front holds more than one trial.
TWO_METRICS = "import sys; x = float(sys.argv[1]); print(f'score={-(x - 0.5) ** 2:.6f}'); print(f'cost={x:.6f}')"


def two_objective_experiment(name: str, *, max_trials: int = 4, parallel: int = 2,
                             algorithm: str = "random") -> str:
    """``trivial_experiment`` with a second objective, declared as Sextant does (the
    ``sextant.io/objectives`` annotation, the metric in additionalMetricNames): maximise score,
    minimise cost."""
    doc = yaml.safe_load(trivial_experiment(name, max_trials=max_trials, parallel=parallel, algorithm=algorithm))
    doc["metadata"]["annotations"] = {"sextant.io/objectives": "cost=minimize"}
    doc["spec"]["objective"]["additionalMetricNames"] = ["cost"]
    container = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["python", "-c", TWO_METRICS, "${trialParameters.x}"]
    return yaml.safe_dump(doc, sort_keys=False)


def run(args: list[str], env: dict[str, str], *, input: str | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT, input=input, timeout=timeout)
