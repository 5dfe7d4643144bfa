"""Katib's DBManager API over real gRPC on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

import time

import grpc
import pytest
import sqlalchemy as sa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sextant.api import api_pb2, api_pb2_grpc


def log(stamp: str, name: str, value: str) -> api_pb2.MetricLog:
    return api_pb2.MetricLog(time_stamp=stamp, metric=api_pb2.Metric(name=name, value=value))


def report(stub, trial: str, logs: list[api_pb2.MetricLog]) -> None:
    stub.ReportObservationLog(api_pb2.ReportObservationLogRequest(
        trial_name=trial, observation_log=api_pb2.ObservationLog(metric_logs=logs)))


def get(stub, trial: str, metric: str = "", start: str = "", end: str = "") -> list[tuple[str, str, str]]:
    reply = stub.GetObservationLog(api_pb2.GetObservationLogRequest(
        trial_name=trial, metric_name=metric, start_time=start, end_time=end))
    return [(m.time_stamp, m.metric.name, m.metric.value) for m in reply.observation_log.metric_logs]


def count_rows(url: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        n = conn.execute(sa.text("SELECT COUNT(*) FROM observation_logs")).scalar_one()
    engine.dispose()
    return n


def test_report_get_delete_round_trip(db_manager):
    stub = db_manager.dbmanager_stub()
    report(stub, "trial-a", [
        log("2024-05-01T10:00:02Z", "loss", "0.5"),
        log("2024-05-01T10:00:01.250Z", "loss", "0.9"),
        log("2024-05-01T10:00:03.000001Z", "accuracy", "0.7"),
        log("2024-05-01T12:00:03+02:00", "loss", "0.4"),  # = 10:00:03Z
    ])
    report(stub, "trial-b", [log("2024-05-01T10:00:00Z", "loss", "9")])
    assert get(stub, "trial-a") == [
        ("2024-05-01T10:00:01.25Z", "loss", "0.9"),
        ("2024-05-01T10:00:02Z", "loss", "0.5"),
        ("2024-05-01T10:00:03Z", "loss", "0.4"),
        ("2024-05-01T10:00:03.000001Z", "accuracy", "0.7"),
    ]
    assert get(stub, "trial-a", "accuracy") == [("2024-05-01T10:00:03.000001Z", "accuracy", "0.7")]
    stub.DeleteObservationLog(api_pb2.DeleteObservationLogRequest(trial_name="trial-a"))
    assert get(stub, "trial-a") == []
    assert get(stub, "trial-b") == [("2024-05-01T10:00:00Z", "loss", "9")]


def test_time_range_is_inclusive_and_nanoseconds_parse(db_manager):
    stub = db_manager.dbmanager_stub()
    report(stub, "t", [log(f"2024-05-01T10:00:0{i}Z", "m", str(i)) for i in range(6)])
    assert [v for _, _, v in get(stub, "t", "m", "2024-05-01T10:00:02Z", "2024-05-01T10:00:04Z")] == ["2", "3", "4"]
    assert [v for _, _, v in get(stub, "t", start="2024-05-01T10:00:04.000000000Z")] == ["4", "5"]
    assert [v for _, _, v in get(stub, "t", end="2024-05-01T11:00:01+01:00")] == ["0", "1"]
    assert get(stub, "t", start="2024-05-01T10:00:05.000001Z") == []
    assert get(stub, "t", "other-metric") == []


def test_empty_results_unknown_trial_and_empty_batch(db_manager):
    stub = db_manager.dbmanager_stub()
    assert get(stub, "never-reported") == []
    report(stub, "t", [])  # Katib fails here with malformed SQL; an empty batch is fine
    report(stub, "t", [log("", "m", "1")])  # empty time stamps are skipped, as in Katib
    assert get(stub, "t") == []
    stub.DeleteObservationLog(api_pb2.DeleteObservationLogRequest(trial_name="never-reported"))
    assert count_rows(db_manager.db_url) == 0


def test_zero_time_round_trips(db_manager):
    stub = db_manager.dbmanager_stub()
    report(stub, "t", [log("0001-01-01T00:00:00Z", "m", "1")])
    assert get(stub, "t") == [("0001-01-01T00:00:00Z", "m", "1")]


@pytest.mark.parametrize("stamp", [
    "2024-05-01 10:00:00", "yesterday", "2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z",
    "2024-05-01T10:00:00", "2024-05-01T25:00:00Z", "0001-01-01T00:00:00+01:00",
])
def test_invalid_timestamp_is_invalid_argument_and_writes_nothing(db_manager, stamp):
    stub = db_manager.dbmanager_stub()
    with pytest.raises(grpc.RpcError) as err:
        report(stub, "t", [log("2024-05-01T10:00:00Z", "m", "ok"), log(stamp, "m", "bad")])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "metric_logs[1].time_stamp" in err.value.details()
    assert count_rows(db_manager.db_url) == 0
    with pytest.raises(grpc.RpcError) as err:
        get(stub, "t", start=stamp)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "start_time" in err.value.details()


def test_bad_names_are_invalid_argument(db_manager):
    stub = db_manager.dbmanager_stub()
    for trial, metric, field in [("", "m", "trial_name"), ("x" * 256, "m", "trial_name"),
                                 ("t", "", "metric.name"), ("t", "m" * 256, "metric.name")]:
        with pytest.raises(grpc.RpcError) as err:
            report(stub, trial, [log("2024-05-01T10:00:00Z", metric, "1")])
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in err.value.details()
    assert count_rows(db_manager.db_url) == 0


def test_hostile_names_are_stored_verbatim(db_manager):
    stub = db_manager.dbmanager_stub()
    trial = "t'; DROP TABLE observation_logs; --"
    metric = 'm"\\ü名前🙂`%_'
    value = "1' OR '1'='1"
    report(stub, trial, [log("2024-05-01T10:00:00Z", metric, value)])
    report(stub, "T'; DROP TABLE OBSERVATION_LOGS; --", [log("2024-05-01T10:00:00Z", metric, "other")])
    assert get(stub, trial) == [("2024-05-01T10:00:00Z", metric, value)]
    assert get(stub, trial, metric) == [("2024-05-01T10:00:00Z", metric, value)]
    assert get(stub, "t%") == []  # no LIKE semantics, and names are case-sensitive
    assert count_rows(db_manager.db_url) == 2


def test_huge_batch(db_manager):
    stub = db_manager.dbmanager_stub()
    n = 50_000
    logs = [log(f"2024-05-01T10:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}Z", "loss", str(i))
            for i in range(n)]
    report(stub, "big", logs)
    rows = get(stub, "big", "loss")
    assert len(rows) == n
    assert [int(v) for _, _, v in rows] == list(range(n))


def test_health_is_serving_for_katib_names_only(db_manager):
    channel = grpc.insecure_channel(db_manager.address)
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", "grpc.health.v1.Health"):
        assert health.Check(health_pb2.HealthCheckRequest(service=name)).status == \
            health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as err:
        health.Check(health_pb2.HealthCheckRequest(service="something.Else"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_not_serving_when_database_fails(db_manager):
    app = db_manager.app
    app.db.ping = lambda: False  # the database stops answering
    app._refresh_health()
    health = health_pb2_grpc.HealthStub(grpc.insecure_channel(db_manager.address))
    assert health.Check(health_pb2.HealthCheckRequest(service="")).status == \
        health_pb2.HealthCheckResponse.NOT_SERVING
    del app.db.ping
    app._refresh_health()
    assert health.Check(health_pb2.HealthCheckRequest(service="")).status == \
        health_pb2.HealthCheckResponse.SERVING


# ---- limits and deadlines (issue 21) ---------------------------------------------------------

def _batch(n: int, name: str = "loss") -> list[api_pb2.MetricLog]:
    return [log(f"2024-05-01T10:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}Z", name, str(i))
            for i in range(n)]


def test_batch_over_the_limit_is_refused_whole(db_manager):
    from sextant.limits import MAX_OBSERVATION_LOGS

    stub = db_manager.dbmanager_stub()
    with pytest.raises(grpc.RpcError) as err:
        report(stub, "over", _batch(MAX_OBSERVATION_LOGS + 1))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "observation_log.metric_logs" in err.value.details() and str(MAX_OBSERVATION_LOGS) in err.value.details()
    assert count_rows(db_manager.db_url) == 0


def test_a_reply_the_caller_never_got_means_nothing_was_written(db_manager):
    """A client that saw DEADLINE_EXCEEDED may retry without duplicating: the server commits only
    while the caller still waits. Whatever the timing, what is stored matches what was answered."""
    stub = db_manager.dbmanager_stub()
    n = 20_000
    logs = _batch(n)
    outcomes = []
    for i, timeout in enumerate((0.02, 0.1, 0.3, 1.0, 30.0)):
        trial = f"deadline-{i}"
        try:
            stub.ReportObservationLog(api_pb2.ReportObservationLogRequest(
                trial_name=trial, observation_log=api_pb2.ObservationLog(metric_logs=logs)), timeout=timeout)
            outcomes.append((trial, n))
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED, err.details()
            outcomes.append((trial, 0))
    time.sleep(1.0)  # let any handler still running after its caller gave up finish (or roll back)
    for trial, expected in outcomes:
        assert len(get(stub, trial)) == expected, (trial, expected)
    assert outcomes[-1][1] == n  # with time enough the write lands


def test_errors_quote_a_bounded_excerpt_of_the_input(db_manager):
    stub = db_manager.dbmanager_stub()
    with pytest.raises(grpc.RpcError) as err:
        report(stub, "t", [log("9" * 100_000, "m", "1")])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # not RESOURCE_EXHAUSTED (metadata size)
    assert "time_stamp" in err.value.details() and len(err.value.details()) < 1000
    with pytest.raises(grpc.RpcError) as err:
        get(stub, "t", start="x" * 100_000)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and len(err.value.details()) < 1000


def test_reading_more_than_the_limit_is_resource_exhausted(fresh_sqlite_url, monkeypatch):
    from services.db_manager import observations
    from services.db_manager.database import Database

    monkeypatch.setattr(observations.limits, "MAX_OBSERVATION_READ", 10)
    monkeypatch.setattr(observations, "_GET", {})  # statements are built with the limit
    db = Database(fresh_sqlite_url)
    try:
        store = observations.ObservationStore(db)
        store.report("t", [(f"2024-05-01T10:00:{i:02d}Z", "loss", str(i)) for i in range(11)])
        with pytest.raises(observations.TooMany, match="one metric_name at a time, and start_time/end_time windows"):
            store.get("t")
        assert len(store.get("t", end_time="2024-05-01T10:00:09Z")) == 10  # exactly the limit is fine
        with pytest.raises(observations.CallerGone):
            store.report("t", [("2024-05-01T11:00:00Z", "loss", "x")], still_wanted=lambda: False)
        assert len(store.get("t", start_time="2024-05-01T11:00:00Z")) == 0  # rolled back
    finally:
        db.dispose()


def test_the_katib_read_port_serves_reads_without_a_token_and_refuses_every_write(fresh_sqlite_url, certificate):
    """--katib-read-port, as the Katib drop-in overlay runs it beside an API port that wants TLS
    and a token: Katib's UI and SDK read there in plaintext with no token; nobody writes there."""
    import secrets

    from sextant.api import store_pb2, store_pb2_grpc
    from sextant.channel import open_channel
    from sextant.ports import free_port
    from tests.integration.conftest import running_db_manager

    cert, key = certificate
    token, read_port = secrets.token_urlsafe(24), free_port()
    with running_db_manager(fresh_sqlite_url, max_workers=8, token=token, tls_cert=str(cert), tls_key=str(key),
                            katib_read_port=read_port) as running:
        with open_channel(running.address, token=token, tls_ca=str(cert)) as api:
            report(api_pb2_grpc.DBManagerStub(api), "t", [log("2024-05-01T10:00:01Z", "loss", "0.9")])
        with grpc.insecure_channel(f"127.0.0.1:{read_port}") as plain:  # Katib's SDK: no TLS, no token
            stub = api_pb2_grpc.DBManagerStub(plain)
            assert get(stub, "t") == [("2024-05-01T10:00:01Z", "loss", "0.9")]
            writes = [lambda: report(stub, "t", [log("2024-05-01T10:00:02Z", "loss", "0.1")]),
                      lambda: stub.DeleteObservationLog(api_pb2.DeleteObservationLogRequest(trial_name="t")),
                      lambda: store_pb2_grpc.ResourceStoreStub(plain).Get(store_pb2.GetRequest(kind="Trial"))]
            for write in writes:
                with pytest.raises(grpc.RpcError) as refused:
                    write()
                assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
            assert get(stub, "t") == [("2024-05-01T10:00:01Z", "loss", "0.9")]  # nothing changed
        # The API port itself still wants its token.
        with open_channel(running.address, tls_ca=str(cert)) as api, pytest.raises(grpc.RpcError) as refused:
            get(api_pb2_grpc.DBManagerStub(api), "t")
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_trial_over_the_read_limit_is_read_in_time_windows(db_manager, monkeypatch):
    """Written in legal batches, more logs than one read may return: the whole read is refused
    with the paging hint, and windows within the limit read every log once."""
    from services.db_manager import observations

    monkeypatch.setattr(observations.limits, "MAX_OBSERVATION_READ", 1000)
    monkeypatch.setattr(observations.limits, "MAX_OBSERVATION_LOGS", 400)
    monkeypatch.setattr(observations, "_GET", {})  # statements are built with the limit
    stub = db_manager.dbmanager_stub()
    logs = _batch(1500)  # 10:00:00.000 .. 10:00:01.499, one per millisecond
    for start in range(0, len(logs), 400):
        report(stub, "long", logs[start:start + 400])
    with pytest.raises(grpc.RpcError) as err:
        get(stub, "long", "loss")
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "1000" in err.value.details() and "start_time/end_time windows" in err.value.details()
    first = get(stub, "long", "loss", end="2024-05-01T10:00:00.999Z")
    second = get(stub, "long", "loss", start="2024-05-01T10:00:01Z")
    assert [int(v) for _, _, v in first + second] == list(range(1500))


def test_a_repeated_report_is_stored_once(db_manager):
    """A retry after a lost reply sends the same batch again: it is answered OK and stores nothing.
    A batch that only partly overlaps is a new report and is stored whole."""
    stub = db_manager.dbmanager_stub()
    batch = [log("2024-05-01T10:00:00Z", "loss", "0.5"), log("2024-05-01T10:00:01Z", "loss", "0.4"),
             log("2024-05-01T10:00:01Z", "accuracy", "0.9")]
    report(stub, "t", batch)
    report(stub, "t", batch)
    assert len(get(stub, "t")) == 3
    report(stub, "other", batch)  # the same logs for another trial are that trial's own
    assert len(get(stub, "other")) == 3
    report(stub, "t", batch[1:] + [log("2024-05-01T10:00:02Z", "loss", "0.3")])
    assert [v for _, n, v in get(stub, "t", "loss")] == ["0.5", "0.4", "0.4", "0.3"]
    # Deleting a trial's logs forgets its batches: reported again, they are stored again.
    stub.DeleteObservationLog(api_pb2.DeleteObservationLogRequest(trial_name="t"))
    report(stub, "t", batch)
    assert len(get(stub, "t")) == 3
    assert count_rows(db_manager.db_url) == 6


def test_concurrent_repeats_of_a_report_store_one_copy(db_manager):
    """Retries racing the first attempt (still uncommitted) wait for it on the batch's key."""
    from concurrent.futures import ThreadPoolExecutor

    stub = db_manager.dbmanager_stub()
    batch = _batch(3000)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: report(stub, "raced", batch), range(4)))
    assert len(get(stub, "raced")) == 3000


def test_a_long_log_is_read_whole_in_pages(db_manager, monkeypatch):
    """sextant.observation_logs.read_logs pages with the time of the first log past the limit
    (trailing metadata of the refusal): every log once, in order, also when logs share a time
    across a page boundary. More logs than the limit at one single time cannot be paged."""
    from services.db_manager import observations
    from sextant.observation_logs import PAGE_END_METADATA, read_logs

    monkeypatch.setattr(observations.limits, "MAX_OBSERVATION_READ", 1000)
    monkeypatch.setattr(observations, "_GET", {})
    stub = db_manager.dbmanager_stub()
    # 2,700 logs, three per millisecond (loss, accuracy, loss again): page ends fall inside groups.
    logs = [log(f"2024-05-01T10:00:{i // 1000:02d}.{i % 1000:03d}Z", name, f"{i}-{name}-{k}")
            for i in range(900) for k, name in enumerate(("loss", "accuracy", "loss"))]
    for start in range(0, len(logs), 500):
        report(stub, "long", logs[start:start + 500])
    with pytest.raises(grpc.RpcError) as err:
        get(stub, "long")
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert dict(err.value.trailing_metadata())[PAGE_END_METADATA] == "2024-05-01T10:00:00.333Z"  # log 1001
    every = read_logs(stub, "long", timeout=30)
    assert [m.metric.value for m in every] == [m.metric.value for m in logs]
    assert [m.metric.value for m in read_logs(stub, "long", "loss", timeout=30)] == \
        [m.metric.value for m in logs if m.metric.name == "loss"]
    report(stub, "flat", [log("0001-01-01T00:00:00Z", "loss", str(i)) for i in range(1001)])
    with pytest.raises(grpc.RpcError) as err:
        read_logs(stub, "flat", timeout=30)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_the_web_uis_reader_gets_a_long_log_whole_and_shows_katibs_zero_time_as_none(db_manager, monkeypatch):
    """The web UI's trial page reads through the same paging reader: a log longer than one
    GetObservationLog may return comes whole, and a line reported without a time (Katib's zero
    time) has no time to show."""
    from services.db_manager import observations
    from services.web_ui.observation_reader import _grpc_reader

    monkeypatch.setattr(observations.limits, "MAX_OBSERVATION_READ", 1000)
    monkeypatch.setattr(observations, "_GET", {})
    stub = db_manager.dbmanager_stub()
    logs = _batch(1500)
    for start in range(0, len(logs), 500):
        report(stub, "long", logs[start:start + 500])
    report(stub, "untimed", [log("0001-01-01T00:00:00Z", "loss", "0.5")])
    with grpc.insecure_channel(db_manager.address) as channel:
        read = _grpc_reader(channel)
        rows = read("long", "loss")
        untimed = read("untimed", "")
    assert [int(r["value"]) for r in rows] == list(range(1500))
    assert untimed == [{"time": "", "name": "loss", "value": "0.5"}]
