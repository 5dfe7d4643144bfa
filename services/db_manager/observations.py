"""Observation logs: Katib's DBManager operations on the ``observation_logs`` table.

Limits (``sextant.limits``): one ReportObservationLog call carries at most
``MAX_OBSERVATION_LOGS`` logs -- a larger batch is refused whole (INVALID_ARGUMENT), so a client
sends long runs in several calls -- and its rows are written in one transaction, committed only
if the caller is still waiting: a reply the caller cannot receive (deadline passed, client gone)
means nothing was written, so repeating the call never duplicates rows. One GetObservationLog
returns at most ``MAX_OBSERVATION_READ`` logs; more is RESOURCE_EXHAUSTED, asking for a metric
name or a time window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from services.db_manager.database import Database
from services.db_manager.schema import observation_logs as T
from sextant import limits
from sextant.timestamps import BadTimestamp, format_rfc3339_nano, parse_rfc3339_strict

MAX_NAME = 255  # the VARCHAR(255) columns of Katib's table
INSERT_CHUNK = 5000  # rows per INSERT statement: large batches stay under packet/parameter limits


class BadObservation(ValueError):
    """Input that cannot be stored; the message names the field and the rule."""


class TooMany(Exception):
    """The answer would be larger than the documented limit (RESOURCE_EXHAUSTED)."""


class CallerGone(Exception):
    """The caller's deadline passed or it disconnected: the work is dropped, nothing committed."""


def _still_wanted() -> bool:
    return True


@dataclass(frozen=True)
class LogRow:
    time: datetime | None
    metric_name: str
    value: str


def _check_name(field: str, value: str, *, required: bool) -> None:
    if required and not value:
        raise BadObservation(f"{field}: must not be empty")
    if len(value) > MAX_NAME:
        raise BadObservation(f"{field}: at most {MAX_NAME} characters (got {len(value)})")
    if "\x00" in value:
        raise BadObservation(f"{field}: must not contain NUL characters")


def parse_log_time(field: str, text: str) -> datetime:
    """A strict RFC 3339 time from a request; a bad one is a BadObservation naming ``field``."""
    try:
        return parse_rfc3339_strict(text)
    except BadTimestamp as err:
        raise BadObservation(f"{field}: {err}") from None


def prepare(trial_name: str, logs: Iterable[tuple[str, str, str]]) -> list[dict[str, object]]:
    """Validates (time_stamp, metric name, value) triples; logs with an empty time are skipped
    as Katib does. Raises BadObservation naming the first bad entry."""
    _check_name("trial_name", trial_name, required=True)
    rows: list[dict[str, object]] = []
    for i, (stamp, name, value) in enumerate(logs):
        if not stamp:
            continue
        when = parse_log_time(f"observation_log.metric_logs[{i}].time_stamp", stamp)
        _check_name(f"observation_log.metric_logs[{i}].metric.name", name, required=True)
        if "\x00" in value:
            raise BadObservation(f"observation_log.metric_logs[{i}].metric.value: must not contain NUL")
        rows.append({"trial_name": trial_name, "time": when, "metric_name": name, "value": value})
    return rows


_INSERT = T.insert()
# (time, metric name, value) rows of one trial's logs.
_Query = sa.Select[datetime | None, str, str]
_GET: dict[tuple[bool, bool, bool], _Query] = {}  # built once per filter combination


def _get_statement(metric: bool, start: bool, end: bool) -> _Query:
    key = (metric, start, end)
    statement = _GET.get(key)
    if statement is None:
        statement = sa.select(T.c.time, T.c.metric_name, T.c.value).where(T.c.trial_name == sa.bindparam("trial"))
        if metric:
            statement = statement.where(T.c.metric_name == sa.bindparam("metric"))
        if start:
            statement = statement.where(T.c.time >= sa.bindparam("start", type_=T.c.time.type))
        if end:
            statement = statement.where(T.c.time <= sa.bindparam("end", type_=T.c.time.type))
        # id breaks ties so equal times come back in insertion order (Katib leaves them unordered).
        # One row past the limit tells "too many" from "exactly the limit".
        statement = _GET[key] = statement.order_by(T.c.time, T.c.id).limit(limits.MAX_OBSERVATION_READ + 1)
    return statement


class ObservationStore:
    def __init__(self, db: Database):
        self.db = db

    def report(self, trial_name: str, logs: Sequence[tuple[str, str, str]],
               still_wanted: Callable[[], bool] = _still_wanted) -> int:
        if len(logs) > limits.MAX_OBSERVATION_LOGS:
            raise BadObservation(f"observation_log.metric_logs: at most {limits.MAX_OBSERVATION_LOGS} logs per "
                                 f"call (got {len(logs)}); send them in several calls")
        rows = prepare(trial_name, logs)
        if not rows:
            return 0  # Katib sends malformed SQL here; an empty batch is simply nothing to do
        with self.db.write() as conn:
            for start in range(0, len(rows), INSERT_CHUNK):
                if not still_wanted():
                    raise CallerGone  # rolled back: the caller will not see a reply
                # executemany: the drivers batch it (mysqlclient rewrites into multi-row INSERTs).
                conn.execute(_INSERT, rows[start:start + INSERT_CHUNK])
            if not still_wanted():
                raise CallerGone  # the last moment to decide: after this the rows are committed
        return len(rows)

    def get(self, trial_name: str, metric_name: str = "", start_time: str = "",
            end_time: str = "", still_wanted: Callable[[], bool] = _still_wanted) -> list[tuple[str, str, str]]:
        _check_name("trial_name", trial_name, required=False)
        _check_name("metric_name", metric_name, required=False)
        params: dict[str, object] = {"trial": trial_name}
        if metric_name:
            params["metric"] = metric_name
        if start_time:
            params["start"] = parse_log_time("start_time", start_time)
        if end_time:
            params["end"] = parse_log_time("end_time", end_time)
        query = _get_statement(bool(metric_name), bool(start_time), bool(end_time))
        out: list[tuple[str, str, str]] = []
        with self.db.read() as conn:
            for t, n, v in conn.execute(query, params):
                if len(out) >= limits.MAX_OBSERVATION_READ:
                    raise TooMany(f"trial {trial_name[:100]!r} has more than {limits.MAX_OBSERVATION_READ} "
                                  "logs matching the request; ask for one metric_name or a start_time/end_time window")
                if len(out) % INSERT_CHUNK == 0 and not still_wanted():
                    raise CallerGone
                out.append((format_rfc3339_nano(t) if t is not None else "", n, v))
        return out

    def delete(self, trial_name: str) -> int:
        with self.db.write() as conn:
            return delete_logs(conn, [trial_name])


def delete_logs(conn: sa.Connection, trial_names: Sequence[str]) -> int:
    if not trial_names:
        return 0
    return conn.execute(T.delete().where(T.c.trial_name.in_(list(trial_names)))).rowcount
