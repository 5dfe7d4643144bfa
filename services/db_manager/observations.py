"""Observation logs: Katib's DBManager operations on the ``observation_logs`` table.

Limits (``sextant.limits``): one ReportObservationLog call carries at most
``MAX_OBSERVATION_LOGS`` logs -- a larger batch is refused whole (INVALID_ARGUMENT), so a client
sends long runs in several calls -- and its rows are written in one transaction, committed only
if the caller is still waiting.

Repeating a call is safe: the transaction also records a digest of the batch (its logs in
order) for the trial, under a primary key, so the same batch reported again for that trial --
a client retrying after a reply it never received, whether or not the first call's commit
landed -- is answered OK and stores nothing. The unit is the batch, not the row: a batch that
only partly overlaps an earlier one is stored whole, because distinct reports may carry equal
rows (lines without a timestamp all get the zero time). The one case this merges wrongly is a
trial reporting the very same logs, in the same order, in two separate calls; those repeats are
equal values at equal times, which no metric strategy (min, max, latest) tells apart.

One GetObservationLog returns at most ``MAX_OBSERVATION_READ`` logs, streamed from the cursor
into the reply; more is RESOURCE_EXHAUSTED, and a reader pages with one metric name and
start_time/end_time windows (the refusal names where the first page ends:
``sextant.observation_logs``).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from services.db_manager.database import Database
from services.db_manager.schema import observation_batches
from services.db_manager.schema import observation_logs as T
from sextant import limits
from sextant.timestamps import BadTimestamp, format_rfc3339_nano, parse_rfc3339_strict

MAX_NAME = 255  # the VARCHAR(255) columns of Katib's table
INSERT_CHUNK = 5000  # rows per INSERT statement: large batches stay under packet/parameter limits
READ_CHUNK = 5000  # rows fetched from the cursor at a time


class BadObservation(ValueError):
    """Input that cannot be stored; the message names the field and the rule."""


class TooMany(Exception):
    """The answer would be larger than the documented limit (RESOURCE_EXHAUSTED).
    ``page_end``: the time of the first log past the limit, when it has one: every matching log
    before it fits in one read (sent to the caller as ``sextant.observation_logs.PAGE_END_METADATA``)."""

    def __init__(self, message: str, page_end: str | None = None):
        super().__init__(message)
        self.page_end = page_end


class CallerGone(Exception):
    """The caller's deadline passed or it disconnected: the work is dropped, nothing committed."""


def _still_wanted() -> bool:
    return True


def too_many_message(trial_name: str) -> str:
    return (f"trial {trial_name[:100]!r} has more than {limits.MAX_OBSERVATION_READ} logs matching the request; "
            "read them in pages: one metric_name at a time, and start_time/end_time windows (both inclusive) "
            "of fewer logs each")


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
_CLAIM = observation_batches.insert()


class _Repeat(Exception):
    """This trial already has a batch with the same logs."""


def batch_digest(rows: Sequence[dict[str, object]]) -> str:
    """128 bits of BLAKE2b over the batch's (time, metric name, value) triples in order. Names
    and values never hold NUL (``prepare`` refuses it), so NUL separates them unambiguously."""
    h = hashlib.blake2b(digest_size=16)
    for row in rows:
        h.update(f"{row['time']}\0{row['metric_name']}\0{row['value']}\0".encode())
    return h.hexdigest()
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
        """Stores one batch in one transaction; returns the logs stored (0 for a repeat)."""
        if len(logs) > limits.MAX_OBSERVATION_LOGS:
            raise BadObservation(f"observation_log.metric_logs: at most {limits.MAX_OBSERVATION_LOGS} logs per "
                                 f"call (got {len(logs)}); send them in several calls")
        rows = prepare(trial_name, logs)
        if not rows:
            return 0  # Katib sends malformed SQL here; an empty batch is simply nothing to do
        try:
            with self.db.write() as conn:
                try:
                    conn.execute(_CLAIM, {"trial_name": trial_name, "digest": batch_digest(rows)})
                except sa.exc.IntegrityError:
                    raise _Repeat from None  # rolls back: the batch's rows are stored already
                for start in range(0, len(rows), INSERT_CHUNK):
                    if not still_wanted():
                        raise CallerGone  # rolled back: the caller will not see a reply
                    # executemany: the drivers batch it (mysqlclient rewrites into multi-row INSERTs).
                    conn.execute(_INSERT, rows[start:start + INSERT_CHUNK])
                if not still_wanted():
                    raise CallerGone  # the last moment to decide: after this the rows are committed
        except _Repeat:
            return 0
        return len(rows)

    def rows(self, trial_name: str, metric_name: str = "", start_time: str = "", end_time: str = "",
             still_wanted: Callable[[], bool] = _still_wanted) -> Generator[tuple[str, str, str], None, None]:
        """The trial's logs as (time_stamp, metric name, value), oldest first, streamed from the
        database (a server-side cursor where the driver has one), so the caller can build its
        reply without a second copy of the rows. Raises TooMany past the limit."""
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
        count = 0
        with self.db.read() as conn:
            result = conn.execution_options(stream_results=True, max_row_buffer=READ_CHUNK).execute(query, params)
            try:
                for t, n, v in result:
                    if count >= limits.MAX_OBSERVATION_READ:
                        raise TooMany(too_many_message(trial_name),
                                      page_end=format_rfc3339_nano(t) if t is not None else None)
                    if count % READ_CHUNK == 0 and not still_wanted():
                        raise CallerGone
                    count += 1
                    yield (format_rfc3339_nano(t) if t is not None else "", n, v)
            finally:
                # A server-side cursor left open would leave the connection busy ("commands out
                # of sync") when it goes back to the pool.
                result.close()

    def get(self, trial_name: str, metric_name: str = "", start_time: str = "", end_time: str = "",
            still_wanted: Callable[[], bool] = _still_wanted) -> list[tuple[str, str, str]]:
        with contextlib.closing(self.rows(trial_name, metric_name, start_time, end_time, still_wanted)) as rows:
            return list(rows)

    def delete(self, trial_name: str) -> int:
        with self.db.write() as conn:
            return delete_logs(conn, [trial_name])


def delete_logs(conn: sa.Connection, trial_names: Sequence[str]) -> int:
    """Deletes the trials' logs, and the record of their batches (a batch reported again after
    the delete is stored again)."""
    if not trial_names:
        return 0
    names = list(trial_names)
    conn.execute(observation_batches.delete().where(observation_batches.c.trial_name.in_(names)))
    return conn.execute(T.delete().where(T.c.trial_name.in_(names))).rowcount
