"""Katib's validating webhook for Experiments, plus numeric sanity checks.

``validate_experiment`` returns *every* problem it finds, each as ``"<field.path>: <rule>"``
(e.g. ``"spec.maxTrialCount: must be greater than 0"``), so a user fixes a file in one pass.
It runs on a defaulted experiment. Checks that need a cluster are left out: the namespace label
(V0), the PersistentVolume check for FromVolume, fetching ConfigMap templates, and collector
images (our collectors are built in). Where Katib is weak we are stricter, on purpose:

* the name regex is anchored at both ends (Katib only checks the first character);
* the namespace must be a DNS label (it becomes a path part locally);
* numbers: min/max must parse, min ≤ max, step > 0, int bounds integral, logUniform needs
  min > 0; lists non-empty and without duplicates; parameter and metric names unique;
* every missing ``${trialParameters.x}`` is reported, not just the first;
* numbers are read with Go's rules, as Katib reads them (``numbers.py``): ``"1_0"``, ``"１０"``
  or ``"٠"`` are not integers here either;
* sizes stay within ``sextant.limits`` (parameters, list lengths, parallel trials, name
  lengths), metric names are printable without spaces and, for the default StdOut/File text
  filter, made of the characters that filter can match; a File collector's path must name a
  file, not a directory;
* error messages quote at most a short excerpt of the offending value.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Sequence
from typing import Any

from sextant import limits, objectives
from sextant.katib import experiment_status
from sextant.resources.models import (
    AlgorithmSetting,
    CollectorKind,
    Distribution,
    EarlyStoppingSetting,
    Experiment,
    FeasibleSpace,
    FileFormat,
    FileSystemKind,
    ObjectiveType,
    ParameterSpec,
    ParameterType,
    ResumePolicy,
)
from sextant.resources.numbers import NumberError, excerpt, parse_finite, parse_int
from sextant.resources.v1alpha3 import is_v1alpha3_experiment, raw_template

NAME_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
NAME_MAX = 40
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_LABEL_MAX = 63
PLACEHOLDER = "${{trialParameters.{}}}"
LEFTOVER_RE = re.compile(r"\$\{trialParameters\.[^}]*\}")
TWO_GROUPS_RE = re.compile(r".*\(.*\).*\(.*\).*", re.DOTALL)
META_REFERENCE_RE = re.compile(
    r"^\$\{trialSpec\.(Name|Namespace|Kind|APIVersion|Labels\[([^\]]+)\]|Annotations\[([^\]]+)\])\}$")
EDITABLE_FIELDS = ("parallel_trial_count", "max_trial_count", "max_failed_trial_count")
# What the default StdOut/File TEXT filter can match as a metric name (Go's \w is ASCII).
DEFAULT_FILTER_NAME_RE = re.compile(r"[A-Za-z0-9_|-]+\Z")


def _param_path(prefix: str, index: int) -> str:
    return f"{prefix}[{index}]"


def _validate_metadata(exp: Experiment, errors: list[str]) -> None:
    name = exp.metadata.name
    if not name:
        errors.append("metadata.name: is required")
    else:
        if len(name) > NAME_MAX:
            errors.append(f"metadata.name: must be no more than {NAME_MAX} characters")
        if not NAME_RE.match(name):
            errors.append("metadata.name: must consist of lower case letters, digits and '-', start with a "
                          "letter and end with a letter or digit (regex ^[a-z]([-a-z0-9]*[a-z0-9])?$)")
    namespace = exp.metadata.namespace
    if not namespace or len(namespace) > DNS_LABEL_MAX or not DNS_LABEL_RE.match(namespace):
        errors.append("metadata.namespace: must be a DNS label (lower case letters, digits and '-', "
                      f"at most {DNS_LABEL_MAX} characters, starting and ending with a letter or digit)")


INT32_MAX = 2**31 - 1  # Katib's counts are *int32; a larger value cannot go on the wire


def _validate_counts(exp: Experiment, errors: list[str]) -> None:
    spec = exp.spec
    for attr, field in (("max_trial_count", "maxTrialCount"), ("parallel_trial_count", "parallelTrialCount"),
                        ("max_failed_trial_count", "maxFailedTrialCount")):
        value = getattr(spec, attr)
        if value is not None and value > INT32_MAX:
            errors.append(f"spec.{field}: must be at most {INT32_MAX} (a 32-bit integer)")
    if spec.max_failed_trial_count is not None and spec.max_failed_trial_count < 0:
        errors.append("spec.maxFailedTrialCount: should not be less than 0")
    if spec.max_trial_count is not None and spec.max_trial_count <= 0:
        errors.append("spec.maxTrialCount: must be greater than 0")
    if spec.parallel_trial_count is not None and spec.parallel_trial_count <= 0:
        errors.append("spec.parallelTrialCount: must be greater than 0")
    elif spec.parallel_trial_count is not None and spec.parallel_trial_count > limits.MAX_PARALLEL_TRIALS:
        errors.append(f"spec.parallelTrialCount: must be at most {limits.MAX_PARALLEL_TRIALS} (Sextant's limit "
                      "on trials running at once)")
    if spec.max_trial_count is not None:
        if spec.max_failed_trial_count is not None and spec.max_failed_trial_count > spec.max_trial_count:
            errors.append("spec.maxFailedTrialCount: should be less than or equal to spec.maxTrialCount")
        if spec.parallel_trial_count is not None and spec.parallel_trial_count > spec.max_trial_count:
            errors.append("spec.parallelTrialCount: should be less than or equal to spec.maxTrialCount")


def _validate_update(exp: Experiment, old: Experiment, errors: list[str]) -> None:
    if exp.spec == old.spec:
        return
    if experiment_status.is_finished(old) and not experiment_status.may_restart(old):
        errors.append("spec.resumePolicy: the experiment is completed and cannot be restarted (only an "
                      "experiment that succeeded by reaching maxTrialCount with resumePolicy LongRunning "
                      "or FromVolume can be restarted)")
    if exp.spec.max_trial_count is not None and exp.spec.max_trial_count <= old.status.trials:
        errors.append(f"spec.maxTrialCount: must be greater than status.trials count ({old.status.trials})")
    new_rest = exp.spec.model_copy(update={f: None for f in EDITABLE_FIELDS})
    old_rest = old.spec.model_copy(update={f: None for f in EDITABLE_FIELDS})
    if new_rest != old_rest:
        changed = [name for name in type(exp.spec).model_fields
                   if name not in EDITABLE_FIELDS and getattr(new_rest, name) != getattr(old_rest, name)]
        fields = ", ".join("spec." + (type(exp.spec).model_fields[n].alias or n) for n in changed)
        errors.append(f"spec: only spec.parallelTrialCount, spec.maxTrialCount and spec.maxFailedTrialCount "
                      f"are editable (changed: {fields})")


def _validate_objective(exp: Experiment, errors: list[str]) -> None:
    objective = exp.spec.objective
    if objective is None:
        errors.append("spec.objective: is required")
        return
    if objective.type not in (ObjectiveType.MINIMIZE, ObjectiveType.MAXIMIZE):
        errors.append("spec.objective.type: must be minimize or maximize")
    if not objective.objective_metric_name:
        errors.append("spec.objective.objectiveMetricName: is required")
    else:
        _check_metric_name("spec.objective.objectiveMetricName", objective.objective_metric_name, errors)
        if objective.objective_metric_name in objective.additional_metric_names:
            errors.append("spec.objective.additionalMetricNames: must not contain the objective metric "
                          f"{excerpt(objective.objective_metric_name)}")
    seen: set[str] = set()
    for i, name in enumerate(objective.additional_metric_names):
        if not name:
            errors.append(f"spec.objective.additionalMetricNames[{i}]: must not be empty")
        elif name in seen:
            errors.append(f"spec.objective.additionalMetricNames[{i}]: duplicate metric name {excerpt(name)}")
        else:
            _check_metric_name(f"spec.objective.additionalMetricNames[{i}]", name, errors)
        seen.add(name)
    if objective.goal is not None and not math.isfinite(objective.goal):
        errors.append("spec.objective.goal: must be a finite number")
    strategy_names: set[str] = set()
    for i, strategy in enumerate(objective.metric_strategies):
        if not strategy.name:
            errors.append(f"spec.objective.metricStrategies[{i}].name: is required")
        elif strategy.name in strategy_names:
            errors.append(f"spec.objective.metricStrategies[{i}].name: duplicate strategy for "
                          f"{excerpt(strategy.name)}")
        else:
            _check_metric_name(f"spec.objective.metricStrategies[{i}].name", strategy.name, errors)
        strategy_names.add(strategy.name)


def _validate_extra_objectives(exp: Experiment, errors: list[str]) -> None:
    """The multi-objective annotation (``sextant.objectives``: extra objectives and directions) against the collected metrics."""
    annotations = exp.metadata.annotations
    if objectives.ANNOTATION not in annotations:
        return
    objective = exp.spec.objective
    primary = objective.objective_metric_name if objective else ""
    collected = list(objective.additional_metric_names) if objective else []
    path = f"metadata.annotations[{objectives.ANNOTATION}]"
    errors.extend(f"{path}: {problem}" for problem in
                  objectives.check(annotations[objectives.ANNOTATION], primary, collected))


def _printable_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a metric or parameter name (None if it can)."""
    if len(name) > limits.MAX_NAME_CHARS:
        return f"must be at most {limits.MAX_NAME_CHARS} characters, got {len(name)}"
    if not name.strip():
        return "must not be blank"
    if any(ch.isspace() or not ch.isprintable() for ch in name):
        return f"must not contain spaces, line breaks or control characters, got {excerpt(name)}"
    return None


def _check_metric_name(path: str, name: str, errors: list[str]) -> None:
    problem = _printable_name_problem(name)
    if problem is not None:
        errors.append(f"{path}: {problem}")


def _metric_names(exp: Experiment) -> list[tuple[str, str]]:
    objective = exp.spec.objective
    if objective is None:
        return []
    named = [("spec.objective.objectiveMetricName", objective.objective_metric_name)]
    named += [(f"spec.objective.additionalMetricNames[{i}]", n)
              for i, n in enumerate(objective.additional_metric_names)]
    return [(p, n) for p, n in named if n]


def _validate_algorithm(exp: Experiment, registry: Any, errors: list[str]) -> None:
    algorithm = exp.spec.algorithm
    if algorithm is None:
        errors.append("spec.algorithm: is required")
    elif not algorithm.algorithm_name:
        errors.append("spec.algorithm.algorithmName: is required")
    elif registry is not None and registry.algorithm(algorithm.algorithm_name) is None:
        errors.append(f"spec.algorithm.algorithmName: unknown algorithm {excerpt(algorithm.algorithm_name)} "
                      f"(registered: {', '.join(registry.algorithm_names())})")
    if algorithm is not None:
        _unique_settings("spec.algorithm.algorithmSettings", algorithm.algorithm_settings, errors)
    early = exp.spec.early_stopping
    if early is not None:
        if not early.algorithm_name:
            errors.append("spec.earlyStopping.algorithmName: is required")
        elif registry is not None and registry.early_stopping(early.algorithm_name) is None:
            errors.append(f"spec.earlyStopping.algorithmName: unknown early stopping algorithm "
                          f"{excerpt(early.algorithm_name)} (registered: {', '.join(registry.early_stopping_names())})")
        _unique_settings("spec.earlyStopping.algorithmSettings", early.algorithm_settings, errors)


def _unique_settings(path: str, settings: Sequence[AlgorithmSetting | EarlyStoppingSetting], errors: list[str]) -> None:
    seen: set[str] = set()
    for i, setting in enumerate(settings):
        if not setting.name:
            errors.append(f"{path}[{i}].name: is required")
        elif len(setting.name) > limits.MAX_NAME_CHARS:
            errors.append(f"{path}[{i}].name: must be at most {limits.MAX_NAME_CHARS} characters")
        elif setting.name in seen:
            errors.append(f"{path}[{i}].name: duplicate setting {excerpt(setting.name)}")
        if len(setting.value) > limits.MAX_SETTING_VALUE_CHARS:
            errors.append(f"{path}[{i}].value: must be at most {limits.MAX_SETTING_VALUE_CHARS} characters")
        seen.add(setting.name)


def _validate_resume_policy(exp: Experiment, errors: list[str]) -> None:
    if is_v1alpha3_experiment(exp) and exp.spec.resume_policy == ResumePolicy.FROM_VOLUME:
        errors.append("spec.resumePolicy: must be Never or LongRunning in kubeflow.org/v1alpha3")


def _validate_trial_template(exp: Experiment, errors: list[str]) -> None:
    template = exp.spec.trial_template
    path = "spec.trialTemplate"
    if template is None:
        errors.append(f"{path}: is required")
        return
    v1alpha3 = is_v1alpha3_experiment(exp)
    raw = raw_template(exp)
    if not v1alpha3 and not template.primary_container_name:
        errors.append(f"{path}.primaryContainerName: is required")
    if not template.success_condition or not template.failure_condition:
        missing = [n for n, v in (("successCondition", template.success_condition),
                                  ("failureCondition", template.failure_condition)) if not v]
        for name in missing:
            errors.append(f"{path}.{name}: is required (both successCondition and failureCondition must be set)")
    _check_job_conditions(template, errors)
    if template.trial_parameters is None:
        errors.append(f"{path}.trialParameters: is required")
        return
    if v1alpha3 and raw is not None:
        if not raw.strip():
            errors.append(f"{path}.goTemplate.rawTemplate: must not be empty")
        else:
            _validate_raw_template(exp, raw, errors)
        if template.trial_spec is not None or template.config_map is not None:
            errors.append(f"{path}: only one of goTemplate.rawTemplate or goTemplate.templateSpec can be given")
        return
    if (template.trial_spec is None) == (template.config_map is None):
        errors.append(f"{path}: exactly one of trialSpec or configMap must be specified")
        return
    if template.config_map is not None:
        cm = template.config_map
        for name, value in (("configMapName", cm.config_map_name), ("configMapNamespace", cm.config_map_namespace),
                            ("templatePath", cm.template_path)):
            if not value:
                errors.append(f"{path}.configMap.{name}: is required")
        return  # the ConfigMap's content is checked when a trial renders it
    _validate_trial_parameters(exp, template, errors)


# Job kinds Katib v1alpha3 accepted from a goTemplate.
_V1ALPHA3_JOB_KINDS = {("batch/v1", "Job"), ("kubeflow.org/v1", "TFJob"), ("kubeflow.org/v1", "PyTorchJob")}


def _sample_value(parameter: Any) -> str:
    space: FeasibleSpace = parameter.feasible_space
    if space.list_:
        return space.list_[0]
    return space.min or space.max or "0"


def _validate_raw_template(exp: Experiment, raw: str, errors: list[str]) -> None:
    """Renders the v1alpha3 Go template once with sample values, as Katib's webhook did."""
    from sextant.templates import render_go_job  # the renderer the trial path uses

    where = "spec.trialTemplate.goTemplate.rawTemplate"
    try:
        job = render_go_job(raw, trial_name=f"{exp.metadata.name or 'trial'}-sample",
                            experiment_name=exp.metadata.name, namespace=exp.metadata.namespace,
                            assignments={p.name: _sample_value(p) for p in exp.spec.parameters})
    except ValueError as err:
        errors.append(f"{where}: {err}")
        return
    if (job.get("apiVersion"), job.get("kind")) not in _V1ALPHA3_JOB_KINDS:
        errors.append(f"{where}: must render a batch/v1 Job, kubeflow.org/v1 TFJob or kubeflow.org/v1 "
                      f"PyTorchJob (got {job.get('apiVersion')!r} {job.get('kind')!r})")


def _validate_trial_parameters(exp: Experiment, template: Any, errors: list[str]) -> None:
    path = "spec.trialTemplate"
    text = json.dumps(template.trial_spec)
    parameter_names = {p.name for p in exp.spec.parameters}
    names: set[str] = set()
    references: set[str] = set()
    for i, tp in enumerate(template.trial_parameters):
        p = f"{path}.trialParameters[{i}]"
        if not tp.name:
            errors.append(f"{p}.name: is required")
        elif len(tp.name) > limits.MAX_NAME_CHARS:
            errors.append(f"{p}.name: must be at most {limits.MAX_NAME_CHARS} characters")
        elif "{" in tp.name or "}" in tp.name:
            errors.append(f"{p}.name: must not contain '{{' or '}}'")
        elif tp.name in names:
            errors.append(f"{p}.name: duplicate trial parameter {excerpt(tp.name)}")
        if not tp.reference:
            errors.append(f"{p}.reference: is required")
        elif tp.reference in references:
            errors.append(f"{p}.reference: duplicate reference {excerpt(tp.reference)}")
        elif exp.spec.parameters and tp.reference not in parameter_names \
                and not META_REFERENCE_RE.match(tp.reference):
            errors.append(f"{p}.reference: {excerpt(tp.reference)} is neither a spec.parameters name nor a "
                          "trial metadata reference such as ${trialSpec.Name}")
        else:
            _check_metadata_reference(f"{p}.reference", tp.reference, template.trial_spec, errors)
        names.add(tp.name)
        references.add(tp.reference)
        if tp.name and "{" not in tp.name and "}" not in tp.name:
            placeholder = PLACEHOLDER.format(tp.name)
            if placeholder not in text:
                errors.append(f"{p}.name: placeholder {placeholder} does not occur in spec.trialTemplate.trialSpec")
            text = text.replace(placeholder, "sextant-test-value")
    leftovers = sorted(set(LEFTOVER_RE.findall(text)))
    if leftovers:
        errors.append(f"{path}.trialSpec: placeholders without a trial parameter: {', '.join(leftovers)}")
    try:
        rendered = json.loads(text)
    except json.JSONDecodeError:
        errors.append(f"{path}.trialSpec: is not a valid object after substituting trial parameters")
        return
    _validate_rendered_job(rendered, errors)


def _check_job_conditions(template: Any, errors: list[str]) -> None:
    """Conditions the trial controller cannot evaluate would leave every trial Running for ever."""
    from sextant.runtime.job_conditions import UnsupportedCondition, check_condition

    for name, value in (("successCondition", template.success_condition),
                        ("failureCondition", template.failure_condition)):
        if not value:
            continue
        try:
            check_condition(value)
        except UnsupportedCondition:
            errors.append(f"spec.trialTemplate.{name}: {excerpt(value)} is not a GJSON path Sextant can evaluate "
                          "(dotted keys, array indexes, '#', queries '#(field==\"value\")' or '#(...)#', "
                          "'|' pipes; e.g. 'status.conditions.#(type==\"Complete\")#|#(status==\"True\")#')")


def _check_metadata_reference(path: str, reference: str, trial_spec: Any, errors: list[str]) -> None:
    """A ${trialSpec.Labels[k]} or ${trialSpec.Annotations[k]} reference needs that key in the
    trialSpec's metadata, as Katib's webhook requires: every trial's job would fail to render."""
    match = META_REFERENCE_RE.match(reference)
    if match is None or not isinstance(trial_spec, dict):
        return  # a configMap template is checked when it is loaded
    label, annotation = match.group(2), match.group(3)
    if label is None and annotation is None:
        return
    metadata = trial_spec.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    field, key = ("labels", label) if label is not None else ("annotations", annotation)
    present = metadata.get(field)
    if not isinstance(present, dict) or key not in present:
        errors.append(f"{path}: {excerpt(reference)} refers to {field[:-1]} {excerpt(key)}, which "
                      f"spec.trialTemplate.trialSpec.metadata.{field} does not have")


def _validate_rendered_job(job: Any, errors: list[str]) -> None:
    path = "spec.trialTemplate.trialSpec"
    if not isinstance(job, dict):
        errors.append(f"{path}: must be an object")
        return
    metadata = job.get("metadata") or {}
    if isinstance(metadata, dict):
        for key in ("name", "namespace"):
            if metadata.get(key):
                errors.append(f"{path}.metadata.{key}: must not be set (the trial's {key} is used)")
    for key in ("apiVersion", "kind"):
        if not job.get(key):
            errors.append(f"{path}.{key}: is required")
    if job.get("apiVersion") == "batch/v1" and job.get("kind") == "Job":
        pod_spec = ((job.get("spec") or {}).get("template") or {}).get("spec") if isinstance(
            job.get("spec"), dict) and isinstance(job["spec"].get("template"), dict) else None
        containers = pod_spec.get("containers") if isinstance(pod_spec, dict) else None
        if not isinstance(containers, list) or not containers:
            errors.append(f"{path}.spec.template.spec.containers: a batch/v1 Job needs at least one container")


def _validate_search_space(exp: Experiment, errors: list[str]) -> None:
    spec = exp.spec
    if not spec.parameters and spec.nas_config is None:
        errors.append("spec.parameters: spec.parameters or spec.nasConfig must be specified")
    elif spec.parameters and spec.nas_config is not None:
        errors.append("spec.nasConfig: only one of spec.parameters and spec.nasConfig can be specified")
    _validate_parameters("spec.parameters", spec.parameters, errors)
    if spec.nas_config is not None:
        for i, op in enumerate(spec.nas_config.operations):
            _validate_parameters(f"spec.nasConfig.operations[{i}].parameters", op.parameters, errors)


def _validate_parameters(prefix: str, parameters: list[ParameterSpec], errors: list[str]) -> None:
    if len(parameters) > limits.MAX_PARAMETERS:
        errors.append(f"{prefix}: must have at most {limits.MAX_PARAMETERS} parameters, got {len(parameters)}")
        return
    seen: set[str] = set()
    for i, parameter in enumerate(parameters):
        p = _param_path(prefix, i)
        if not parameter.name:
            errors.append(f"{p}.name: is required")
        elif parameter.name in seen:
            errors.append(f"{p}.name: duplicate parameter name {excerpt(parameter.name)}")
        else:
            problem = _printable_name_problem(parameter.name)
            if problem is not None:
                errors.append(f"{p}.name: {problem}")
        seen.add(parameter.name)
        _validate_feasible_space(p, parameter, errors)


def _bound(fsp: str, name: str, text: str, kind: ParameterType, errors: list[str]) -> float | None:
    """The value of min or max, or None after recording why it is unusable."""
    try:
        if kind == ParameterType.INT:
            value = parse_int(text)
            if abs(value) > limits.MAX_INT_MAGNITUDE:
                errors.append(f"{fsp}.{name}: must be between -{limits.MAX_INT_MAGNITUDE} and "
                              f"{limits.MAX_INT_MAGNITUDE} (2^53) for parameterType int, got {excerpt(text)}")
                return None
            return float(value)
        return parse_finite(text)
    except NumberError as err:
        errors.append(f"{fsp}.{name}: {err}")
        return None


def _step(fsp: str, text: str, kind: ParameterType, errors: list[str]) -> float | None:
    try:
        value = float(parse_int(text)) if kind == ParameterType.INT else parse_finite(text)
    except NumberError as err:
        errors.append(f"{fsp}.step: {err}")
        return None
    if value <= 0:
        errors.append(f"{fsp}.step: must be a number greater than 0, got {excerpt(text)}")
        return None
    return value


def _validate_numeric_space(fsp: str, fs: FeasibleSpace, kind: ParameterType, errors: list[str]) -> None:
    if fs.list_ is not None:
        errors.append(f"{fsp}.list: is not allowed for parameterType {kind.value}")
    bounds: dict[str, float] = {}
    for name, text in (("min", fs.min), ("max", fs.max)):
        if text is None or text == "":
            errors.append(f"{fsp}.{name}: is required for parameterType {kind.value}")
            continue
        value = _bound(fsp, name, text, kind, errors)
        if value is not None:
            bounds[name] = value
    step = _step(fsp, fs.step, kind, errors) if fs.step is not None and fs.step != "" else None
    if "min" in bounds and "max" in bounds:
        low, high = bounds["min"], bounds["max"]
        if low > high:
            errors.append(f"{fsp}.min: must be less than or equal to max ({excerpt(fs.min)} > {excerpt(fs.max)})")
        elif not math.isfinite(high - low):
            errors.append(f"{fsp}.max: max - min must be a finite double (at most {sys.float_info.max!r})")
        elif step is not None and (high - low) / step > limits.MAX_STEPPED_VALUES:
            errors.append(f"{fsp}.step: (max - min) / step must be at most {limits.MAX_STEPPED_VALUES} (2^53)")
    if fs.distribution in (Distribution.LOG_UNIFORM, Distribution.LOG_NORMAL) and \
            "min" in bounds and bounds["min"] <= 0:
        errors.append(f"{fsp}.min: must be greater than 0 for distribution {fs.distribution.value}")


def _validate_list_space(fsp: str, fs: FeasibleSpace, kind: ParameterType, errors: list[str]) -> None:
    for name, value in (("max", fs.max), ("min", fs.min), ("step", fs.step)):
        if value is not None:
            errors.append(f"{fsp}.{name}: is not allowed for parameterType {kind.value}")
    if not fs.list_:
        errors.append(f"{fsp}.list: must contain at least one value for parameterType {kind.value}")
        return
    if len(fs.list_) > limits.MAX_LIST_VALUES:
        errors.append(f"{fsp}.list: must have at most {limits.MAX_LIST_VALUES} values, got {len(fs.list_)}")
        return
    counts: dict[str, int] = {}
    for value in fs.list_:
        counts[value] = counts.get(value, 0) + 1
    dupes = sorted(v for v, n in counts.items() if n > 1)
    if dupes:
        errors.append(f"{fsp}.list: values must be unique (duplicated: {excerpt(', '.join(dupes), 200)})")
    for i, value in enumerate(fs.list_):
        if len(value) > limits.MAX_SETTING_VALUE_CHARS:
            errors.append(f"{fsp}.list[{i}]: must be at most {limits.MAX_SETTING_VALUE_CHARS} characters")
    if kind == ParameterType.DISCRETE:
        bad = []
        for value in fs.list_:
            try:
                parse_finite(value)
            except NumberError:
                bad.append(value)
        if bad:
            errors.append(f"{fsp}.list: values of a discrete parameter must be finite numbers "
                          f"(not: {excerpt(', '.join(bad), 200)})")


def _validate_feasible_space(p: str, parameter: ParameterSpec, errors: list[str]) -> None:
    fs = parameter.feasible_space
    fsp = f"{p}.feasibleSpace"
    if fs.max is None and fs.min is None and fs.list_ is None and fs.step is None:
        errors.append(f"{fsp}: must not be empty")
        return
    kind = parameter.parameter_type
    if kind in (ParameterType.INT, ParameterType.DOUBLE):
        _validate_numeric_space(fsp, fs, kind, errors)
    elif kind in (ParameterType.CATEGORICAL, ParameterType.DISCRETE):
        _validate_list_space(fsp, fs, kind, errors)


def _validate_collector(exp: Experiment, errors: list[str]) -> None:
    spec = exp.spec.metrics_collector_spec
    if spec is None or spec.collector is None:
        return  # defaults always fill it
    p = "spec.metricsCollectorSpec"
    kind = spec.collector.kind
    source = spec.source
    fsp = source.file_system_path if source is not None else None
    if fsp is not None and fsp.path:
        problem = _collector_path_problem(fsp.path, fsp.kind)
        if problem is not None:
            errors.append(f"{p}.source.fileSystemPath.path: {problem}")
    if kind == CollectorKind.FILE:
        if fsp is None or fsp.kind != FileSystemKind.FILE or not (fsp.path or "").startswith("/"):
            errors.append(f"{p}.source.fileSystemPath: File collector needs kind File and an absolute path")
        if fsp is not None and fsp.format not in (FileFormat.TEXT, FileFormat.JSON):
            errors.append(f"{p}.source.fileSystemPath.format: must be TEXT or JSON")
        if fsp is not None and fsp.format == FileFormat.JSON and source is not None and source.filter is not None:
            errors.append(f"{p}.source.filter: is not allowed with format JSON")
    elif kind == CollectorKind.TENSORFLOW_EVENT:
        if fsp is None or fsp.kind != FileSystemKind.DIRECTORY or not (fsp.path or "").startswith("/"):
            errors.append(f"{p}.source.fileSystemPath: TensorFlowEvent collector needs kind Directory and an "
                          "absolute path")
        if fsp is not None and fsp.format is not None:
            errors.append(f"{p}.source.fileSystemPath.format: must be empty for TensorFlowEvent")
    elif kind == CollectorKind.PROMETHEUS:
        http = source.http_get if source is not None else None
        port = http.port if http is not None else None
        if isinstance(port, str) and port.isdigit():
            port = int(port)  # an IntOrString holding digits counts as a number, as in Katib
        if not isinstance(port, int) or isinstance(port, bool) or port <= 0:
            errors.append(f"{p}.source.httpGet.port: must be a positive integer")
        if http is None or not (http.path or "").startswith("/"):
            errors.append(f"{p}.source.httpGet.path: must start with '/'")
    elif kind == CollectorKind.CUSTOM:
        if not spec.collector.custom_collector:
            errors.append(f"{p}.collector.customCollector: is required for kind Custom")
        if fsp is not None and (not (fsp.path or "").startswith("/") or fsp.kind is None):
            errors.append(f"{p}.source.fileSystemPath: must have an absolute path and kind File or Directory")
    elif kind not in (CollectorKind.STDOUT, CollectorKind.PUSH):
        errors.append(f"{p}.collector.kind: invalid metrics collector kind {kind.value!r} (use StdOut, File, "
                      "TensorFlowEvent, PrometheusMetric, Custom or Push)")
    default_filter = source is None or source.filter is None or not source.filter.metrics_format
    text_format = kind == CollectorKind.STDOUT or (
        kind == CollectorKind.FILE and fsp is not None and fsp.format in (None, FileFormat.TEXT))
    if default_filter and text_format:
        for path, name in _metric_names(exp):
            if _printable_name_problem(name) is None and not DEFAULT_FILTER_NAME_RE.match(name):
                errors.append(f"{path}: {excerpt(name)} can never be read by the {kind.value} collector's default "
                              "filter, which matches names made of ASCII letters, digits, '_', '-' and '|' "
                              f"(rename the metric or set {p}.source.filter.metricsFormat)")
    if source is not None and source.filter is not None:
        for i, expression in enumerate(source.filter.metrics_format):
            fp = f"{p}.source.filter.metricsFormat[{i}]"
            try:
                compiled = re.compile(expression)
            except re.error as err:
                errors.append(f"{fp}: is not a valid regular expression ({err})")
                continue
            if compiled.groups < 2 or not TWO_GROUPS_RE.match(expression):
                errors.append(f"{fp}: must contain two capture groups (metric name, value)")


def _collector_path_problem(path: str, kind: FileSystemKind | None) -> str | None:
    """Why a collector could never read ``path`` (None if it may)."""
    if len(path) > limits.MAX_PATH_CHARS:
        return f"must be at most {limits.MAX_PATH_CHARS} characters"
    if any(not ch.isprintable() for ch in path):
        return "must not contain line breaks or control characters"
    if not path.startswith("/"):
        return None  # the kind-specific rule below reports a relative path
    parts = path.split("/")
    if any(part in (".", "..") for part in parts):
        return f"must not contain '.' or '..' components, got {excerpt(path)}"
    if path.strip("/") == "":
        return "must not be the root directory"
    if kind == FileSystemKind.FILE and path.endswith("/"):
        return f"names a directory (ends with '/'), a File collector needs a file, got {excerpt(path)}"
    return None


def _validate_request_size(exp: Experiment, errors: list[str]) -> None:
    parallel = exp.spec.parallel_trial_count or 0
    parameters = len(exp.spec.parameters)
    if 0 < parallel <= limits.MAX_PARALLEL_TRIALS and parallel * parameters > limits.MAX_REQUEST_VALUES:
        errors.append(f"spec.parallelTrialCount: {parallel} parallel trials x {parameters} parameters must be at "
                      f"most {limits.MAX_REQUEST_VALUES} values per request to the algorithm (run fewer trials "
                      "at once)")


def validate_experiment(exp: Experiment, old: Experiment | None = None, registry: Any = None) -> list[str]:
    """Every rule violation of a defaulted experiment, as "<field.path>: <rule>" messages."""
    errors: list[str] = []
    _validate_metadata(exp, errors)
    _validate_counts(exp, errors)
    if old is not None:
        _validate_update(exp, old, errors)
    _validate_objective(exp, errors)
    _validate_extra_objectives(exp, errors)
    _validate_algorithm(exp, registry, errors)
    _validate_resume_policy(exp, errors)
    _validate_trial_template(exp, errors)
    _validate_search_space(exp, errors)
    _validate_request_size(exp, errors)
    _validate_collector(exp, errors)
    return errors
