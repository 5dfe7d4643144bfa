"""``sextant.report_metrics({...})``: a trial reports its own metrics (collector kind Push).

Katib's SDK equivalent is ``katib.report_metrics``. The trial name comes from
``KATIB_TRIAL_NAME`` (set by Sextant's runtimes, as by Katib's pod webhook), the DB manager
address from ``SEXTANT_DB_MANAGER`` (default ``127.0.0.1:6789``), the bearer token, if
the stack uses one, from ``SEXTANT_TOKEN``, and the CA of a DB manager serving TLS from
``SEXTANT_TLS_CA`` (a PEM file; Sextant's Kubernetes runtime sets both in a trial's pod).

Timestamps are RFC3339 in UTC with microseconds (Katib uses whole seconds; the finer stamp keeps
``latest`` right when a trial reports more than once a second).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

from sextant.timestamps import now_rfc3339_micro

DEFAULT_DB_MANAGER = "127.0.0.1:6789"


def report_metrics(metrics: Mapping[str, float | int | str], *, trial_name: str | None = None,
                   db_manager_address: str | None = None, token: str | None = None,
                   timeout: float = 120.0) -> None:
    """Sends ``{name: value}`` as one observation-log batch for the current trial.

    Raises ValueError for a missing trial name or a value that is not a number.
    """
    import grpc  # noqa: F401 - imported lazily so ``import sextant`` stays light

    from sextant.api import api_pb2, api_pb2_grpc
    from sextant.channel import open_channel

    trial = trial_name or os.environ.get("KATIB_TRIAL_NAME")
    if not trial:
        raise ValueError("report_metrics: no trial name (pass trial_name= or set KATIB_TRIAL_NAME)")
    if not metrics:
        raise ValueError("report_metrics: metrics must name at least one metric")
    stamp = now_rfc3339_micro()
    logs = []
    for name, value in metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"report_metrics: metric {name!r}: value {value!r} is not a number") from None
        if math.isnan(number):
            raise ValueError(f"report_metrics: metric {name!r}: value is NaN")
        logs.append(api_pb2.MetricLog(time_stamp=stamp,
                                      metric=api_pb2.Metric(name=str(name), value=repr(number))))
    address = db_manager_address or os.environ.get("SEXTANT_DB_MANAGER") or DEFAULT_DB_MANAGER
    channel = open_channel(address, token=token or os.environ.get("SEXTANT_TOKEN"),
                           tls_ca=os.environ.get("SEXTANT_TLS_CA") or None)
    try:
        api_pb2_grpc.DBManagerStub(channel).ReportObservationLog(
            api_pb2.ReportObservationLogRequest(
                trial_name=trial, observation_log=api_pb2.ObservationLog(metric_logs=logs)),
            timeout=timeout)
    finally:
        channel.close()
