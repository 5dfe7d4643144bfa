"""Arguments of ``services.metrics_collector`` for one trial, from its spec (facts §8.1).

The Katib sidecar's flags map to ours: ``-m`` → ``--metrics`` (objective first), ``-o-type`` →
``--objective-type``, ``-path`` → ``--path``, ``-f`` → ``--filter``, ``-format`` →
``--format``, ``-stop-rule`` → ``--stop-rule``, ``-s-earlystop`` → ``--early-stopping``. The DB
manager address and the trial name reach the collector through the environment
(``SEXTANT_DB_MANAGER``, ``KATIB_TRIAL_NAME``) that the runtime sets.
"""

from __future__ import annotations

import json

from sextant.resources.models import Trial


class CollectorSpecError(ValueError):
    pass


def _enum(value) -> str:
    return str(getattr(value, "value", value)) if value is not None else ""


def _url(http_get: dict) -> str:
    """A Kubernetes HTTPGetAction as a URL on this machine (host defaults to loopback)."""
    host = http_get.get("host") or "127.0.0.1"
    scheme = str(http_get.get("scheme") or "HTTP").lower()
    path = http_get.get("path") or "/metrics"
    return f"{scheme}://{host}:{http_get.get('port') or 8080}{path if path.startswith('/') else '/' + path}"


def collector_args(trial: Trial, *, dialect: str = "v1beta1", early_stopping_address: str | None = None,
                   db_manager_address: str | None = None, report: str = "direct") -> list[str]:
    """``report="spool"`` (the runtime ships the spool) is used only without early-stopping
    rules: early stopping (median stop) needs the logs in the database while the trial runs."""
    spec = trial.spec
    objective = spec.objective
    if objective is None or not objective.objective_metric_name:
        raise CollectorSpecError("spec.objective.objectiveMetricName: required to collect metrics")
    metrics = [objective.objective_metric_name,
               *[m for m in objective.additional_metric_names if m != objective.objective_metric_name]]
    args = ["--metrics", ";".join(metrics), "--objective-type", _enum(objective.type),
            "--dialect", dialect]
    if db_manager_address:
        args += ["--db-manager", db_manager_address]
    mc = spec.metrics_collector
    kind = _enum(mc.collector.kind) if mc and mc.collector else "StdOut"
    args += ["--kind", kind]
    source = mc.source if mc else None
    if source is not None:
        fs = source.file_system_path
        if fs is not None and fs.path:
            args += ["--path", fs.path]
            if fs.format is not None:
                args += ["--format", _enum(fs.format)]
        if source.filter is not None:
            for pattern in source.filter.metrics_format:
                args += ["--filter", pattern]
        if source.http_get is not None:
            args += ["--url", _url(source.http_get.model_dump(by_alias=True, exclude_none=True))]
    if kind == "Custom":
        container = (mc.collector.custom_collector or {}) if mc and mc.collector else {}
        argv = [str(x) for x in (container.get("command") or [])] + \
            [str(x) for x in (container.get("args") or [])]
        if not argv:
            raise CollectorSpecError("spec.metricsCollectorSpec.collector.customCollector: needs a "
                                     "command or args to run locally")
        args += ["--custom-command", json.dumps(argv)]
    for rule in spec.early_stopping_rules:
        args += ["--stop-rule", f"{rule.name};{rule.value};{_enum(rule.comparison)};{rule.start_step}"]
    if spec.early_stopping_rules and early_stopping_address:
        args += ["--early-stopping", early_stopping_address]
    if report == "spool" and not spec.early_stopping_rules:
        args += ["--report", "spool"]
    return args
