"""How a trial's metrics are collected: a typed value, rendered to argv only at the process boundary.

The trial controller builds a ``CollectorSettings`` from the Trial; a runtime carries it in its
``JobSpec`` and turns it into the metrics collector's command line (``to_argv``) only when it
starts the wrapper process (locally) or writes the container command (Kubernetes). The local
runtime's after-exit collection reads the spec directly, so no one parses the argv back.

Katib's sidecar flags map to the collector's: ``-m`` → ``--metrics`` (objective first),
``-o-type`` → ``--objective-type``, ``-path`` → ``--path``, ``-f`` → ``--filter``, ``-format`` →
``--format``, ``-stop-rule`` → ``--stop-rule``, ``-s-earlystop`` → ``--early-stopping``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from sextant.metric_lines import KINDS

# Kinds whose every metric can be read once the job has ended (or that the trial pushes itself).
AFTER_EXIT_KINDS = ("StdOut", "File", "Push", "None")
DEFAULT_DB_MANAGER = "127.0.0.1:6789"

Report = Literal["direct", "spool"]


@dataclass(frozen=True)
class StopRule:
    """An early-stopping rule: stop when ``metric`` compares (less/greater/equal) to ``value``
    after ``start_step`` reports."""

    metric: str
    value: str
    comparison: str
    start_step: int = 0

    def to_flag(self) -> str:
        return f"{self.metric};{self.value};{self.comparison};{self.start_step}"


@dataclass(frozen=True)
class CollectorSettings:
    """The metrics collector's settings for one trial job."""

    metrics: tuple[str, ...]  # the objective first
    objective_type: str = ""  # minimize | maximize | ""
    kind: str = "StdOut"
    dialect: str = "v1beta1"  # which Katib default filter applies without ``filters``
    db_manager: str | None = None  # None: the environment's SEXTANT_DB_MANAGER, else the default
    path: str | None = None  # File: the metrics file; TensorFlowEvent: the event directory
    format: str | None = None  # TEXT | JSON
    filters: tuple[str, ...] = ()
    url: str | None = None  # PrometheusMetric: the endpoint
    custom_command: tuple[str, ...] = ()  # Custom: the user's collector argv
    stop_rules: tuple[StopRule, ...] = ()
    early_stopping: str | None = None  # the EarlyStopping service address
    # direct: the collector sends batches to the DB manager; spool: it only writes them to the
    # job's spool directory for the trial controller to ship.
    report: Report = "direct"
    trial: str | None = None  # None: KATIB_TRIAL_NAME from the environment
    # Tuning (tests shorten them); None keeps the collector's defaults.
    poll_interval: float | None = None
    flush_interval: float | None = None

    @property
    def objective(self) -> str:
        return self.metrics[0] if self.metrics else ""

    def collects_after_exit(self) -> bool:
        """True if every metric can be read once the job has ended: nothing needs to watch it."""
        return self.kind in AFTER_EXIT_KINDS and self.report == "spool" and not self.stop_rules

    def db_manager_for_trial(self, environment: dict[str, str]) -> str:
        """The DB manager address the trial is told (``SEXTANT_DB_MANAGER``)."""
        return self.db_manager or environment.get("SEXTANT_DB_MANAGER") or DEFAULT_DB_MANAGER

    def with_paths(self, rewrite: Callable[[str], str]) -> CollectorSettings:
        """The same spec with ``path`` and the custom command's words passed through ``rewrite``."""
        return replace(self, path=rewrite(self.path) if self.path else self.path,
                       custom_command=tuple(rewrite(w) for w in self.custom_command))

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"metricsCollectorSpec.collector.kind: must be one of {', '.join(KINDS)}, "
                             f"got {self.kind!r}")

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready form (the local runtime keeps it in the job's record on disk)."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> CollectorSettings:
        fields = dict(record)
        for name in ("metrics", "filters", "custom_command"):
            fields[name] = tuple(fields.get(name) or ())
        fields["stop_rules"] = tuple(StopRule(**r) for r in fields.get("stop_rules") or ())
        return cls(**fields)

    def to_argv(self) -> list[str]:
        """The ``python -m services.metrics_collector`` options for this spec."""
        args = ["--metrics", ";".join(self.metrics), "--objective-type", self.objective_type,
                "--dialect", self.dialect]
        if self.trial:
            args += ["--trial", self.trial]
        if self.db_manager:
            args += ["--db-manager", self.db_manager]
        args += ["--kind", self.kind]
        if self.path:
            args += ["--path", self.path]
            if self.format:
                args += ["--format", self.format]
        for pattern in self.filters:
            args += ["--filter", pattern]
        if self.url:
            args += ["--url", self.url]
        if self.custom_command:
            args += ["--custom-command", json.dumps(list(self.custom_command))]
        for rule in self.stop_rules:
            args += ["--stop-rule", rule.to_flag()]
        if self.stop_rules and self.early_stopping:
            args += ["--early-stopping", self.early_stopping]
        if self.report == "spool":
            args += ["--report", "spool"]
        if self.poll_interval is not None:
            args += ["--poll-interval", str(self.poll_interval)]
        if self.flush_interval is not None:
            args += ["--flush-interval", str(self.flush_interval)]
        return args
