"""Reading a trial's whole observation log from the DB manager, in pages when it holds more logs
than one GetObservationLog may return (``sextant.limits.MAX_OBSERVATION_READ``).

Katib's request has no page token, only an inclusive ``start_time``/``end_time`` window. When a
read is refused as too large, Sextant's DB manager adds trailing metadata ``PAGE_END_METADATA``:
the time of the first log past the limit. Every matching log before that time fits in one read,
so the reader takes ``[start, page end - 1 µs]``, then goes on from the page end. Logs that share
one timestamp are never split, so more than the limit at a single time (e.g. the zero time Katib
gives lines without a timestamp) cannot be read through this API at all: that refusal is raised.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import grpc

from sextant.api import api_pb2
from sextant.timestamps import BadTimestamp, format_rfc3339_nano, parse_rfc3339_strict

PAGE_END_METADATA = "sextant-page-end"


def _page_end(err: grpc.RpcError) -> datetime | None:
    if err.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return None
    for key, value in err.trailing_metadata() or ():
        if key == PAGE_END_METADATA:
            try:
                return parse_rfc3339_strict(value)
            except BadTimestamp:
                return None
    return None


def read_logs(stub: Any, trial_name: str, metric_name: str = "",
              timeout: float | None = None) -> list[api_pb2.MetricLog]:
    """Every log of the trial (of one metric, if given), in the DB manager's order."""
    out: list[api_pb2.MetricLog] = []
    start: datetime | None = None
    while True:
        request = api_pb2.GetObservationLogRequest(
            trial_name=trial_name, metric_name=metric_name,
            start_time=format_rfc3339_nano(start) if start is not None else "")
        try:
            reply = stub.GetObservationLog(request, timeout=timeout)
        except grpc.RpcError as err:
            end = _page_end(err)
            if end is None or (start is not None and end <= start):
                raise  # not a page limit, or more logs at one time than one read may return
            if end > datetime.min:
                request.end_time = format_rfc3339_nano(end - timedelta(microseconds=1))
                out.extend(stub.GetObservationLog(request, timeout=timeout).observation_log.metric_logs)
            start = end
            continue
        out.extend(reply.observation_log.metric_logs)
        return out
