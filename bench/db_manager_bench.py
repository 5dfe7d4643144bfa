"""DB manager benchmark: ReportObservationLog rows/s and GetObservationLog latency, over gRPC.

    .venv/bin/python -m bench.db_manager_bench --backend sqlite
    .venv/bin/python -m bench.db_manager_bench --backend mariadb --rows 1000000

Each run uses a fresh database (SQLite in a temp dir; ``sextant_bench_<hex>`` on the server,
dropped afterwards) and an in-process DB manager on a loopback port, called through a real
gRPC channel. The 1M-row table for the read test is filled directly with executemany (that
is set-up, not measured).
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
from datetime import datetime, timedelta

import grpc
import sqlalchemy as sa

from services.db_manager.app import DBManagerApp
from services.db_manager.database import Database, migrate
from services.db_manager.schema import observation_logs
from sextant.api import api_pb2, api_pb2_grpc
from sextant.config import ServerSettings

ADMIN = {"mariadb": "mysql+mysqldb://root@127.0.0.1:3306/?charset=utf8mb4",
         "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"}


def fresh_database(backend: str):
    if backend == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp()}/bench.db", lambda: None
    name = f"sextant_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(ADMIN[backend], isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        extra = " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" if backend == "mariadb" else ""
        conn.execute(sa.text(f"CREATE DATABASE {name}{extra}"))

    def drop():
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE {name}" + (" WITH (FORCE)" if backend == "postgresql" else "")))

    return sa.engine.make_url(ADMIN[backend]).set(database=name).render_as_string(False), drop


def stamp(i: int) -> str:
    return (datetime(2024, 1, 1) + timedelta(milliseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def bench_report(stub, batch: int, rows: int) -> float:
    calls = max(1, rows // batch)
    requests = [api_pb2.ReportObservationLogRequest(
        trial_name=f"write-{batch}-{c}", observation_log=api_pb2.ObservationLog(metric_logs=[
            api_pb2.MetricLog(time_stamp=stamp(c * batch + i), metric=api_pb2.Metric(name="loss", value=str(i)))
            for i in range(batch)])) for c in range(calls)]
    start = time.perf_counter()
    for r in requests:
        stub.ReportObservationLog(r)
    return calls * batch / (time.perf_counter() - start)


def fill(db: Database, trials: int, per_trial: int) -> None:
    base = datetime(2024, 1, 1)
    chunk: list[dict] = []
    with db.write() as conn:
        for t in range(trials):
            for i in range(per_trial):
                chunk.append({"trial_name": f"trial-{t}", "time": base + timedelta(seconds=i),
                              "metric_name": "loss" if i % 2 else "accuracy", "value": str(i)})
            if len(chunk) >= 20_000:
                conn.execute(observation_logs.insert(), chunk)
                chunk = []
        if chunk:
            conn.execute(observation_logs.insert(), chunk)
    if db.backend == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE observation_logs"))


def bench_get(stub, trials: int, queries: int, metric: str) -> list[float]:
    latencies = []
    for q in range(queries):
        request = api_pb2.GetObservationLogRequest(trial_name=f"trial-{(q * 7919) % trials}", metric_name=metric)
        start = time.perf_counter()
        reply = stub.GetObservationLog(request)
        latencies.append((time.perf_counter() - start) * 1000)
        assert reply.observation_log.metric_logs
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "mariadb", "postgresql"], default="sqlite")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the table for the read test")
    parser.add_argument("--per-trial", type=int, default=100, help="rows per trial in the read test")
    parser.add_argument("--write-rows", type=int, default=100_000, help="rows written per batch size")
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    url, drop = fresh_database(args.backend)
    db = Database(url)
    try:
        migrate(db)
        app = DBManagerApp(ServerSettings(port=0, max_workers=16), db)
        port = app.start()
        stub = api_pb2_grpc.DBManagerStub(grpc.insecure_channel(f"127.0.0.1:{port}",
                                                                options=[("grpc.max_send_message_length", -1)]))
        print(f"backend={args.backend}")
        for batch, rows in ((1, min(args.write_rows, 3000)), (100, args.write_rows), (1000, args.write_rows)):
            print(f"report batch={batch:<5} rows={rows:<7} {bench_report(stub, batch, rows):10.0f} rows/s")
        with db.write() as conn:
            conn.execute(observation_logs.delete())
        trials = args.rows // args.per_trial
        start = time.perf_counter()
        fill(db, trials, args.per_trial)
        print(f"filled {trials * args.per_trial} rows ({trials} trials) in {time.perf_counter() - start:.1f}s")
        for metric, label in (("loss", "one metric"), ("", "all metrics")):
            lat = sorted(bench_get(stub, trials, args.queries, metric))
            print(f"get {label:<11} ({args.per_trial if not metric else args.per_trial // 2} rows/reply): "
                  f"p50={statistics.median(lat):.2f}ms p95={lat[int(len(lat) * 0.95)]:.2f}ms "
                  f"mean={statistics.fmean(lat):.2f}ms")
        app.stop()
    finally:
        db.dispose()
        drop()


if __name__ == "__main__":
    main()
