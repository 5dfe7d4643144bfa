"""Sextant's Python client, in the spirit of Katib's ``KatibClient``.

    from sextant.sdk import SextantClient, search, tune

    client = SextantClient()                       # the user's local stack (SEXTANT_HOME, else ~/.local/state/sextant)
    client.create_experiment("examples/v1beta1/random.yaml")
    client.wait_for_experiment("random", timeout=300)
    print(client.get_optimal_hyperparameters("random"))

    def objective(parameters):
        x = parameters["x"]
        print(f"score={-(x - 2) ** 2}")           # StdOut collector (the default), or
                                                   # sextant.report_metrics({...}) with Push

    best = tune(objective, {"x": search.double(-5, 5)}, objective_metric_name="score",
                max_trial_count=12)                # -> {"x": 1.97}

Everything goes through the DB manager's resource store (``sextant.store.client``); trial
metrics come from ``DBManager.GetObservationLog``. ``tune`` runs trials through the local stack:
as local processes in this Python environment, or, with Katib's ``base_image=``, in that image
when the stack runs trials on Docker (``sextant up --runtime docker|auto``); an image (or
``resources_per_trial``) the stack will not use is said at create time in an
``ImageNotUsedWarning``, as ``sextant run`` says it. When no stack is
running ``tune`` starts one, says so, and stops it again when it returns (``keep_stack=True``
keeps it). Experiments created from this machine's local stack record the directory they were
submitted from; local trials run there.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import secrets
import sys
import textwrap
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

from sextant.config import data_dir as resolve_data_dir
from sextant.config import read_token
from sextant.image_use import stack_unused_image_reason, unused_image_warning
from sextant.katib import experiment_status, trial_status
from sextant.katib.condition_list import condition_is
from sextant.resources.admission import admit_experiment
from sextant.resources.loading import load_documents
from sextant.resources.models import EXPERIMENT_LABEL, Experiment, OptimalTrial, Suggestion, Trial, to_doc
from sextant.resources.vocabulary import WORKING_DIR_ANNOTATION
from sextant.stack import (
    StackConfig,
    StackPaths,
    start_detached,
    stop_supervisor,
    supervisor_running,
    wait_ready,
)
from sextant.store.interface import Invalid

CONDITIONS = experiment_status.CONDITION_TYPES
PRIMARY_CONTAINER = "training-container"


class ExperimentFailed(RuntimeError):
    """``wait_for_experiment`` saw the Failed condition."""


class ImageNotUsedWarning(UserWarning):
    """A trial's image (or its ``resources_per_trial``) will not be used by the stack it runs on."""


# ---------------------------------------------------------------------------------------------
# Search space helpers (Katib's ``katib.search``)


class search:  # noqa: N801 - reads like Katib's module: search.double(...)
    """Builders of search-space entries for ``tune`` (the key of the dict is the name)."""

    @staticmethod
    def double(min: float, max: float, step: float | None = None, distribution: str | None = None) -> dict[str, Any]:
        return _space("double", min=min, max=max, step=step, distribution=distribution)

    @staticmethod
    def int(min: int, max: int, step: int | None = None, distribution: str | None = None) -> dict[str, Any]:
        return _space("int", min=min, max=max, step=step, distribution=distribution)

    @staticmethod
    def categorical(values: list[Any]) -> dict[str, Any]:
        return {"parameterType": "categorical", "feasibleSpace": {"list": [str(v) for v in values]}}

    @staticmethod
    def discrete(values: list[Any]) -> dict[str, Any]:
        return {"parameterType": "discrete", "feasibleSpace": {"list": [str(v) for v in values]}}


def _space(kind: str, **values: Any) -> dict[str, Any]:
    space = {k: str(v) for k, v in values.items() if v is not None}
    return {"parameterType": kind, "feasibleSpace": space}


def _is_space(value: Any) -> bool:
    return isinstance(value, dict) and "parameterType" in value and "feasibleSpace" in value


# ---------------------------------------------------------------------------------------------
# The client


class SextantClient:
    """A connection to a Sextant DB manager.

    ``address`` > ``SEXTANT_SERVER`` > the local stack's ``<data_dir>/address``; the token
    ``token`` > ``SEXTANT_TOKEN`` > ``<data_dir>/token``. With ``start_stack=True`` a local
    stack is started (detached) when none is running.
    """

    def __init__(self, address: str | None = None, data_dir: str | os.PathLike[str] | None = None,
                 token: str | None = None, *, namespace: str = "default", tls_ca: str | None = None,
                 start_stack: bool = False, timeout: float = 30.0):
        self.data_dir = resolve_data_dir(str(data_dir) if data_dir else None)
        self.paths = StackPaths(self.data_dir)
        self.namespace = namespace
        self.started_stack = False  # whether this client started the local stack (stop_stack stops it)
        self._image_reason: str | None = None
        self.local = not (address or os.environ.get("SEXTANT_SERVER"))
        self.address = address or os.environ.get("SEXTANT_SERVER") or self._local_address(start_stack)
        self._token = read_token(token, str(self.paths.token))
        from sextant.channel import open_channel
        from sextant.store.client import GrpcResourceStore

        self.channel = open_channel(self.address, token=self._token, tls_ca=tls_ca)
        self.store = GrpcResourceStore(self.channel, timeout=timeout)

    def _local_address(self, start: bool) -> str:
        if supervisor_running(self.paths):
            address = wait_ready(self.paths, timeout=30)
            if address:
                return address
        if not start:
            raise ConnectionError(f"no Sextant stack is running for {self.data_dir}; start one with "
                                  "`sextant up --detach` or pass start_stack=True")
        address = start_detached(StackConfig(data_dir=self.data_dir, port=0))
        self.started_stack = True
        return address

    def stop_stack(self) -> None:
        """Stops the local stack if this client started it (else does nothing)."""
        if self.started_stack:
            stop_supervisor(self.paths)
            self.started_stack = False

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> SextantClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- experiments ------------------------------------------------------------------------
    def create_experiment(self, experiment: Experiment | Mapping[str, Any] | str | os.PathLike[str],
                          namespace: str | None = None) -> Experiment:
        """Creates an Experiment from a model, a document, or a YAML/JSON file path.

        Raises ``sextant.store.interface.Invalid`` (``.errors`` lists every problem)."""
        if isinstance(experiment, Experiment):
            doc = to_doc(experiment)
        elif isinstance(experiment, Mapping):
            doc = dict(experiment)
        else:
            docs = load_documents(Path(experiment).read_text(encoding="utf-8"))
            if len(docs) != 1:
                raise Invalid([f"{experiment}: expected exactly one experiment, found {len(docs)}"])
            doc = docs[0]
        meta = dict(doc.get("metadata") or {})
        if namespace or not meta.get("namespace"):
            meta["namespace"] = namespace or self.namespace
        if self.local:  # this machine's stack: its local trials run where the user is
            meta["annotations"] = {WORKING_DIR_ANNOTATION: os.getcwd(), **(meta.get("annotations") or {})}
        doc["metadata"] = meta
        doc.pop("status", None)
        created = cast(Experiment, self.store.create(admit_experiment(doc)))
        warning = unused_image_warning(doc, self.unused_image_reason)
        if warning:  # as the CLI says it: the trials would otherwise say so only once they ran
            warnings.warn(warning, ImageNotUsedWarning, stacklevel=2)
        return created

    def unused_image_reason(self) -> str:
        """Why this machine's stack will not run trials in the image they name ("" when it will,
        or for a remote server, which decides for itself); asked once per client."""
        if self._image_reason is None:
            self._image_reason = stack_unused_image_reason(self.paths) if self.local else ""
        return self._image_reason

    def get_experiment(self, name: str, namespace: str | None = None) -> Experiment:
        return cast(Experiment, self.store.get("Experiment", namespace or self.namespace, name))

    def list_experiments(self, namespace: str | None = None) -> list[Experiment]:
        return cast(list[Experiment], self.store.list("Experiment", namespace or self.namespace)[0])

    def delete_experiment(self, name: str, namespace: str | None = None) -> None:
        self.store.delete("Experiment", namespace or self.namespace, name)

    def get_experiment_conditions(self, name: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return [to_doc(c) for c in self.get_experiment(name, namespace).status.conditions]

    def is_experiment_succeeded(self, name: str, namespace: str | None = None) -> bool:
        return experiment_status.is_succeeded(self.get_experiment(name, namespace))

    def is_experiment_failed(self, name: str, namespace: str | None = None) -> bool:
        return experiment_status.is_failed(self.get_experiment(name, namespace))

    def wait_for_experiment(self, name: str, timeout: float = 600, condition: str = experiment_status.SUCCEEDED,
                            namespace: str | None = None, polling_interval: float = 0.5) -> Experiment:
        """Polls until ``condition`` is True. Raises ExperimentFailed when the experiment fails
        (unless waiting for Failed) and TimeoutError after ``timeout`` seconds."""
        if condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {', '.join(CONDITIONS)}, got {condition!r}")
        deadline = time.monotonic() + timeout
        while True:
            exp = self.get_experiment(name, namespace)
            if condition_is(exp, condition):
                return exp
            if condition != experiment_status.FAILED and experiment_status.is_failed(exp):
                failed = next(c for c in exp.status.conditions if c.type == experiment_status.FAILED)
                raise ExperimentFailed(f"experiment {name} failed: {failed.reason} {failed.message}".rstrip())
            if time.monotonic() >= deadline:
                raise TimeoutError(f"experiment {name} was not {condition} after {timeout:g}s")
            time.sleep(polling_interval)

    def get_optimal_hyperparameters(self, name: str, namespace: str | None = None) -> OptimalTrial | None:
        """``status.currentOptimalTrial``, or None while no trial has reported the objective."""
        optimal = self.get_experiment(name, namespace).status.current_optimal_trial
        return optimal if optimal is not None and optimal.best_trial_name else None

    def pareto_front(self, name: str, namespace: str | None = None) -> list[OptimalTrial] | None:
        """``status.paretoOptimalTrials`` of an experiment that declares extra objectives
        (``sextant.io/objectives``): the trials no other trial beats on every objective, best
        first on the primary objective. None for a single-objective experiment."""
        return self.get_experiment(name, namespace).status.pareto_optimal_trials

    # -- trials and suggestions ---------------------------------------------------------------
    def list_trials(self, experiment_name: str | None = None, namespace: str | None = None) -> list[Trial]:
        labels = {EXPERIMENT_LABEL: experiment_name} if experiment_name else None
        return cast(list[Trial], self.store.list("Trial", namespace or self.namespace, labels)[0])

    def get_trial(self, name: str, namespace: str | None = None) -> Trial:
        return cast(Trial, self.store.get("Trial", namespace or self.namespace, name))

    def get_success_trial_details(self, experiment_name: str, namespace: str | None = None) -> list[dict[str, Any]]:
        out = []
        for t in self.list_trials(experiment_name, namespace):
            if trial_status.is_succeeded(t):
                out.append({"name": t.metadata.name,
                            "parameter_assignments": [to_doc(a) for a in t.spec.parameter_assignments],
                            "metrics": [to_doc(m) for m in (t.status.observation.metrics
                                                            if t.status.observation else [])]})
        return out

    def list_suggestions(self, namespace: str | None = None) -> list[Suggestion]:
        return cast(list[Suggestion], self.store.list("Suggestion", namespace or self.namespace)[0])

    def get_suggestion(self, name: str, namespace: str | None = None) -> Suggestion:
        return cast(Suggestion, self.store.get("Suggestion", namespace or self.namespace, name))

    def get_trial_metrics(self, trial_name: str, metric_name: str = "", timeout: float = 120) -> list[dict[str, Any]]:
        """The trial's observation log (DBManager.GetObservationLog, in pages when it is longer
        than one call may return): ``[{time, name, value}]``."""
        from sextant.api import api_pb2_grpc
        from sextant.observation_logs import read_logs

        logs = read_logs(api_pb2_grpc.DBManagerStub(self.channel), trial_name, metric_name, timeout=timeout)
        return [{"time": m.time_stamp, "name": m.metric.name, "value": m.metric.value} for m in logs]

    # -- tune -----------------------------------------------------------------------------------
    def tune(self, objective: Callable[..., Any], parameters: Mapping[str, Any], *, name: str | None = None,
             objective_metric_name: str, objective_type: str = "maximize", objective_goal: float | None = None,
             additional_metric_names: list[str] | None = None, algorithm_name: str = "random",
             algorithm_settings: Mapping[str, Any] | None = None, max_trial_count: int = 10,
             parallel_trial_count: int = 1, max_failed_trial_count: int | None = None,
             metrics_collector_config: Mapping[str, Any] | None = None, env_per_trial: Mapping[str, str] | None = None,
             retain_trials: bool = False, namespace: str | None = None, wait: bool = True,
             timeout: float = 3600, base_image: str | None = None, packages_to_install: list[str] | None = None,
             pip_index_url: str | None = None,
             resources_per_trial: Mapping[str, Any] | None = None) -> dict[str, Any] | Experiment:
        """Tunes ``objective`` over ``parameters``; see the module docstring and ``tune``."""
        why = unapplied_resources_reason(resources_per_trial, base_image, self.unused_image_reason)
        if why:
            warnings.warn(f"tune: resources_per_trial is not applied: {why}", ImageNotUsedWarning, stacklevel=2)
        experiment = build_tune_experiment(
            objective, parameters, data_dir=self.data_dir, name=name, objective_metric_name=objective_metric_name,
            objective_type=objective_type, objective_goal=objective_goal,
            additional_metric_names=additional_metric_names, algorithm_name=algorithm_name,
            algorithm_settings=algorithm_settings, max_trial_count=max_trial_count,
            parallel_trial_count=parallel_trial_count, max_failed_trial_count=max_failed_trial_count,
            metrics_collector_config=metrics_collector_config, env_per_trial=env_per_trial,
            retain_trials=retain_trials, namespace=namespace or self.namespace, base_image=base_image,
            packages_to_install=packages_to_install, pip_index_url=pip_index_url,
            resources_per_trial=resources_per_trial)
        created = self.create_experiment(experiment)
        if not wait:
            return created
        self.wait_for_experiment(created.metadata.name, timeout=timeout, namespace=created.metadata.namespace)
        optimal = self.get_optimal_hyperparameters(created.metadata.name, created.metadata.namespace)
        if optimal is None:
            raise ExperimentFailed(f"experiment {created.metadata.name} finished without any trial reporting "
                                   f"{objective_metric_name!r}")
        types = {k: v["parameterType"] for k, v in parameters.items() if _is_space(v)}
        return {a.name: convert(a.value, types.get(a.name, "")) for a in optimal.parameter_assignments}


def convert(value: str, parameter_type: str) -> Any:
    """A parameter value as the objective sees it: int, float, or (categorical) the string."""
    if parameter_type == "int":
        return int(float(value))
    if parameter_type == "double":
        return float(value)
    if parameter_type == "discrete":
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and "." not in value else number
    return value


# ---------------------------------------------------------------------------------------------
# Turning a function into an Experiment


_NAME_BAD = re.compile(r"[^a-z0-9-]+")


def _default_name(fn: Callable[..., Any]) -> str:
    base = _NAME_BAD.sub("-", getattr(fn, "__name__", "objective").lower().replace("_", "-")).strip("-")
    base = base if base and base[0].isalpha() else f"tune-{base}".rstrip("-")
    return f"{base[:28].rstrip('-')}-{secrets.token_hex(3)}"


def _function_reference(fn: Callable[..., Any]) -> dict[str, str] | None:
    """``{module, qualname, path}`` when the trial process can import ``fn`` by name."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        return None
    mod = sys.modules.get(module)
    file = getattr(mod, "__file__", None)
    if not file:
        return None
    root = Path(file).resolve().parent
    for _ in range(module.count(".") + (1 if Path(file).name == "__init__.py" else 0)):
        root = root.parent
    return {"module": module, "qualname": qualname, "path": str(root)}


def objective_source(fn: Callable[..., Any]) -> str:
    """The source code of ``fn`` (a def function; its imports must be inside it)."""
    if getattr(fn, "__name__", "<lambda>") == "<lambda>":
        raise ValueError("tune: objective must be a def function, not a lambda")
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as err:
        raise ValueError(f"tune: cannot get the source of {fn!r} ({err}); define it in a file") from None


def write_objective(fn: Callable[..., Any], directory: Path) -> dict[str, str]:
    """Stores how a trial process finds ``fn``: by import reference, else its source code."""
    directory.mkdir(parents=True, exist_ok=True)
    ref = _function_reference(fn)
    if ref is not None:
        return ref
    source = objective_source(fn)
    path = directory / "objective.py"
    path.write_text(source)
    return {"source": str(path), "function": fn.__name__}


def check_packages(packages: list[str] | None, index_url: str | None, *, in_image: bool) -> list[str]:
    """Katib's ``packages_to_install``: pip requirements. Installed in the trial's image when there
    is one; otherwise trials run in this environment, so each must be installed here already."""
    if index_url and not (in_image and packages):
        raise ValueError("tune: pip_index_url is used only to install packages_to_install in base_image")
    if not packages:
        return []
    if isinstance(packages, str) or not all(isinstance(p, str) and p.strip() for p in packages):
        raise ValueError("tune: packages_to_install must be a list of pip requirements, e.g. ['scikit-learn']")
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import InvalidRequirement, Requirement

    missing = []
    for text in packages:
        try:
            requirement = Requirement(text)
        except InvalidRequirement as err:
            raise ValueError(f"tune: packages_to_install: {text!r} is not a pip requirement ({err})") from None
        if in_image:
            continue
        try:
            installed = distribution(requirement.name).version
        except PackageNotFoundError:
            missing.append(text)
            continue
        if requirement.specifier and not requirement.specifier.contains(installed, prereleases=True):
            missing.append(f"{text} (installed: {installed})")
    if missing:
        raise ValueError("tune: packages_to_install: not installed in this Python environment, where local "
                         f"trials run: {', '.join(missing)}. Install them here (pip install ...), or pass "
                         "base_image= to install them in the trial's image")
    return list(packages)


_RESOURCE_NAMES = {"gpu": "nvidia.com/gpu"}


def trial_resources(resources: Any) -> dict[str, Any] | None:
    """Katib's ``resources_per_trial`` as a container's ``resources``: ``{"cpu": "2", "memory":
    "1Gi", "gpu": 1}`` (both requests and limits; ``gpu`` means ``nvidia.com/gpu``), a mapping with
    ``requests``/``limits``, or a ``kubernetes.client.V1ResourceRequirements``."""
    if resources is None:
        return None
    if hasattr(resources, "limits") and hasattr(resources, "requests") and not isinstance(resources, Mapping):
        resources = {"limits": resources.limits or {}, "requests": resources.requests or {}}
    if not isinstance(resources, Mapping):
        raise ValueError("tune: resources_per_trial must be a mapping such as {'cpu': '2', 'memory': '1Gi'}")

    def quantities(values: Any, where: str) -> dict[str, str]:
        if not isinstance(values, Mapping):
            raise ValueError(f"tune: resources_per_trial{where} must be a mapping of resource name to quantity")
        out = {}
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
                raise ValueError(f"tune: resources_per_trial{where}[{key!r}]: expected a quantity such as "
                                 f"'2', '500m' or '1Gi', got {value!r}")
            out[_RESOURCE_NAMES.get(str(key), str(key))] = str(value)
        return out

    if set(resources) & {"limits", "requests"}:
        unknown = set(resources) - {"limits", "requests"}
        if unknown:
            raise ValueError(f"tune: resources_per_trial: unexpected {sorted(unknown)} beside requests/limits")
        out = {k: quantities(v, f"[{k!r}]") for k, v in resources.items()}
        return {k: v for k, v in out.items() if v} or None
    flat = quantities(resources, "")
    return {"requests": dict(flat), "limits": dict(flat)} if flat else None


def unapplied_resources_reason(resources_per_trial: Any, base_image: str | None,
                               image_reason: Callable[[], str]) -> str:
    """Why Katib's ``resources_per_trial`` will not limit the trials ("" when it will): only a
    container gets limits, so it needs ``base_image`` and a stack that runs that image
    (``image_reason`` says why it would not; asked only then)."""
    if not resources_per_trial:
        return ""
    if not base_image:
        return "without base_image, trials run as local processes on this machine, which Sextant does not limit"
    return image_reason()


def build_tune_experiment(objective: Callable[..., Any], parameters: Mapping[str, Any], *, data_dir: Path,
                          objective_metric_name: str, name: str | None = None,
                          objective_type: str = "maximize", objective_goal: float | None = None,
                          additional_metric_names: list[str] | None = None, algorithm_name: str = "random",
                          algorithm_settings: Mapping[str, Any] | None = None, max_trial_count: int = 10,
                          parallel_trial_count: int = 1, max_failed_trial_count: int | None = None,
                          metrics_collector_config: Mapping[str, Any] | None = None,
                          env_per_trial: Mapping[str, str] | None = None, retain_trials: bool = False,
                          namespace: str = "default", base_image: str | None = None,
                          packages_to_install: list[str] | None = None, pip_index_url: str | None = None,
                          resources_per_trial: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The Experiment document ``tune`` submits (also useful to inspect or save as YAML).

    Katib's container options: ``base_image`` runs each trial as a self-contained Python program
    in that image (the objective is shipped as source, so it must do its own imports; metrics
    are printed for the StdOut collector) when the stack runs trials on Docker, and on this
    machine's Python otherwise. ``packages_to_install`` (with ``pip_index_url``) are pip-installed
    inside the image before the objective runs; without ``base_image`` they must already be
    installed here (trials run in this environment). ``resources_per_trial`` (``{"cpu": "2",
    "memory": "1Gi", "gpu": 1}``, or ``requests``/``limits``) becomes the container's resources.
    """
    if not callable(objective):
        raise ValueError("tune: objective must be a function")
    if not objective_metric_name:
        raise ValueError("tune: objective_metric_name is required")
    space = {k: v for k, v in parameters.items() if _is_space(v)}
    if not space:
        raise ValueError("tune: parameters must contain at least one search.double/int/categorical entry")
    fixed = {k: v for k, v in parameters.items() if not _is_space(v)}
    name = name or _default_name(objective)
    kind = (metrics_collector_config or {}).get("kind", "StdOut")
    packages = check_packages(packages_to_install, pip_index_url, in_image=bool(base_image))
    resources = trial_resources(resources_per_trial)
    types = {k: v["parameterType"] for k, v in space.items()}
    arguments = [f"{k}=${{trialParameters.{k}}}" for k in space]
    env = [{"name": k, "value": str(v)} for k, v in (env_per_trial or {}).items()]
    if base_image:
        if kind != "StdOut":
            raise ValueError(f"tune: metrics_collector_config kind {kind!r} cannot be used with base_image: "
                             "a trial in an image prints its metrics for the StdOut collector")
        from sextant.tune_runner import standalone_program

        program = standalone_program(objective_source(objective), objective.__name__, types=types, fixed=fixed,
                                     metric=objective_metric_name, packages=packages, index_url=pip_index_url)
        # python3: the name every image with Python has (Debian's and distroless ones lack `python`)
        container: dict[str, Any] = {"name": PRIMARY_CONTAINER, "image": base_image,
                                     "command": ["python3", "-u", "-c", program, *arguments], "env": env}
    else:
        directory = Path(data_dir) / "tune" / namespace / name
        spec_file = directory / "trial.json"
        location = write_objective(objective, directory)
        spec_file.write_text(json.dumps({**location, "fixed": fixed, "types": types,
                                         "objective_metric_name": objective_metric_name, "collector": kind},
                                        indent=2, default=str))
        if "path" in location:
            env.append({"name": "PYTHONPATH", "value": os.pathsep.join(
                p for p in (location["path"], os.environ.get("PYTHONPATH", "")) if p)})
        # No image: the trial runs this machine's Python (the function and its modules are here),
        # also on a stack whose runtime would run a trial that names an image in a container.
        container = {
            "name": PRIMARY_CONTAINER,
            "command": ["python", "-m", "sextant.tune_runner", "--spec", str(spec_file), *arguments], "env": env,
        }
    if resources:
        container["resources"] = resources
    objective_spec: dict[str, Any] = {"type": objective_type, "objectiveMetricName": objective_metric_name}
    if objective_goal is not None:
        objective_spec["goal"] = objective_goal
    if additional_metric_names:
        objective_spec["additionalMetricNames"] = list(additional_metric_names)
    spec: dict[str, Any] = {
        "objective": objective_spec,
        "algorithm": {"algorithmName": algorithm_name, "algorithmSettings": [
            {"name": k, "value": str(v)} for k, v in (algorithm_settings or {}).items()]},
        "parameters": [{"name": k, **v} for k, v in space.items()],
        "maxTrialCount": max_trial_count,
        "parallelTrialCount": parallel_trial_count,
        "metricsCollectorSpec": {"collector": {"kind": kind}},
        "trialTemplate": {
            "primaryContainerName": PRIMARY_CONTAINER,
            "retain": retain_trials,
            "trialParameters": [{"name": k, "reference": k} for k in space],
            "trialSpec": {"apiVersion": "batch/v1", "kind": "Job",
                          "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [container]}}}},
        },
    }
    if max_failed_trial_count is not None:
        spec["maxFailedTrialCount"] = max_failed_trial_count
    return {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


# Katib's tune() arguments Sextant does not take, with the reason a caller is told.
UNSUPPORTED_KATIB_ARGUMENTS = {
    "trainer_parameters": "Katib's LLM fine-tuning (storage, model and dataset providers) is not supported",
    "storage_config": "Katib's LLM fine-tuning (storage, model and dataset providers) is not supported",
    "model_provider_parameters": "Katib's LLM fine-tuning (storage, model and dataset providers) is not supported",
    "dataset_provider_parameters": "Katib's LLM fine-tuning (storage, model and dataset providers) is not supported",
}


def tune(objective: Callable[..., Any], parameters: Mapping[str, Any], *, data_dir: str | os.PathLike[str] | None = None,
         address: str | None = None, token: str | None = None, keep_stack: bool = False,
         **options: Any) -> dict[str, Any] | Experiment:
    """Tunes a Python function and returns the best parameters found (``{name: value}``).

    ``objective(parameters)`` gets a dict of this trial's values (int/float/str by parameter
    type, plus any non-search entries of ``parameters`` as given) and reports metrics by
    printing ``name=value`` lines (the default StdOut collector) or by calling
    ``sextant.report_metrics({...})`` with ``metrics_collector_config={"kind": "Push"}``; a
    returned number (or dict of numbers) is reported for it. Functions in importable modules
    run by reference; others (e.g. defined in a script or notebook) are shipped as source and
    must do their own imports. Options are those of ``SextantClient.tune`` (name,
    objective_metric_name, objective_type, algorithm_name, algorithm_settings, max_trial_count,
    parallel_trial_count, max_failed_trial_count, objective_goal, metrics_collector_config,
    env_per_trial, namespace, wait, timeout, and Katib's base_image, packages_to_install,
    pip_index_url, resources_per_trial: see ``build_tune_experiment``).

    Without ``address``, the user's local stack is used; when none is running, one is started
    (on Docker-capable ``--runtime auto`` when ``base_image`` is given), ``tune`` says so on
    stderr, and stops it again when it returns, unless ``keep_stack=True`` (or ``wait=False``,
    which needs the stack to keep running).
    """
    for key, why in UNSUPPORTED_KATIB_ARGUMENTS.items():
        if key in options:
            raise ValueError(f"tune: {key}: {why} by Sextant")
    accepted = set(inspect.signature(SextantClient.tune).parameters) - {"self", "objective", "parameters"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise TypeError(f"tune() got unexpected argument(s) {', '.join(unknown)}; it takes "
                        f"{', '.join(sorted(accepted | {'data_dir', 'address', 'token', 'keep_stack'}))}")
    # Trials that name an image run in it only on a Docker-capable stack: one started here for
    # base_image gets SEXTANT_RUNTIME=auto (Docker when an engine answers), unless the user chose.
    choose_runtime = bool(options.get("base_image")) and "SEXTANT_RUNTIME" not in os.environ
    if choose_runtime:
        os.environ["SEXTANT_RUNTIME"] = "auto"
    try:
        client = SextantClient(address=address, data_dir=data_dir, token=token, start_stack=address is None)
    finally:
        if choose_runtime:
            os.environ.pop("SEXTANT_RUNTIME", None)
    keep = keep_stack or not options.get("wait", True)
    if client.started_stack:
        print(f"tune: started a local Sextant stack in {client.data_dir} (DB manager {client.address}); "
              + ("it keeps running: `sextant down` stops it" if keep else
                 "it stops when tune returns (keep_stack=True keeps it)"), file=sys.stderr, flush=True)
    try:
        return client.tune(objective, parameters, **options)
    finally:
        if client.started_stack and not keep:
            client.stop_stack()
            print(f"tune: stopped the local Sextant stack it started in {client.data_dir}", file=sys.stderr,
                  flush=True)
        client.close()
