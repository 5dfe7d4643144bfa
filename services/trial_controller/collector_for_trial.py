"""A trial's ``CollectorSettings``, from its ``metricsCollectorSpec``, objective and stop rules.

The DB manager address and the trial name reach the collector through the environment
(``SEXTANT_DB_MANAGER``, ``KATIB_TRIAL_NAME``) that the runtime sets, unless given here.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from sextant.resources.models import Trial
from sextant.runtime.collector_settings import CollectorSettings, Report, StopRule


class CollectorSettingsError(ValueError):
    """The trial's metrics collection cannot be set up (the message names the field)."""


def _enum(value: Enum | str | None) -> str:
    if value is None:
        return ""
    return str(value.value) if isinstance(value, Enum) else str(value)


def _url(http_get: dict[str, Any]) -> str:
    """A Kubernetes HTTPGetAction as a URL on this machine (host defaults to loopback)."""
    host = http_get.get("host") or "127.0.0.1"
    scheme = str(http_get.get("scheme") or "HTTP").lower()
    path = http_get.get("path") or "/metrics"
    return f"{scheme}://{host}:{http_get.get('port') or 8080}{path if path.startswith('/') else '/' + path}"


def collector_settings(trial: Trial, *, dialect: str = "v1beta1", early_stopping_address: str | None = None,
                       db_manager_address: str | None = None, report: Report = "direct") -> CollectorSettings:
    """``report="spool"`` (the runtime ships the spool) is used only without early-stopping
    rules: early stopping (median stop) needs the logs in the database while the trial runs."""
    spec = trial.spec
    objective = spec.objective
    if objective is None or not objective.objective_metric_name:
        raise CollectorSettingsError("spec.objective.objectiveMetricName: required to collect metrics")
    metrics = (objective.objective_metric_name,
               *[m for m in objective.additional_metric_names if m != objective.objective_metric_name])
    mc = spec.metrics_collector
    kind = _enum(mc.collector.kind) if mc and mc.collector else "StdOut"
    path = fmt = url = None
    filters: tuple[str, ...] = ()
    source = mc.source if mc else None
    if source is not None:
        fs = source.file_system_path
        if fs is not None and fs.path:
            path = fs.path
            fmt = _enum(fs.format) if fs.format is not None else None
        if source.filter is not None:
            filters = tuple(source.filter.metrics_format)
        if source.http_get is not None:
            url = _url(source.http_get.model_dump(by_alias=True, exclude_none=True))
    custom: tuple[str, ...] = ()
    if kind == "Custom":
        container = (mc.collector.custom_collector or {}) if mc and mc.collector else {}
        custom = tuple(str(x) for x in (container.get("command") or [])) + \
            tuple(str(x) for x in (container.get("args") or []))
        if not custom:
            raise CollectorSettingsError("spec.metricsCollectorSpec.collector.customCollector: needs a "
                                     "command or args to run locally")
    rules = tuple(StopRule(r.name, r.value, _enum(r.comparison), r.start_step)
                  for r in spec.early_stopping_rules)
    return CollectorSettings(
        metrics=metrics, objective_type=_enum(objective.type), kind=kind, dialect=dialect,
        db_manager=db_manager_address or None, path=path, format=fmt, filters=filters, url=url,
        custom_command=custom, stop_rules=rules,
        early_stopping=early_stopping_address if rules else None,
        report="spool" if report == "spool" and not rules else "direct",
    )
