"""MariaDB works through both drivers Sextant supports: PyMySQL (pure Python, the default
install) and mysqlclient (the ``mysqlclient`` extra, used by CI and the images). The other
MariaDB tests use whichever is installed, so this module exercises PyMySQL even where
mysqlclient is present."""

from __future__ import annotations

import importlib.util

import pytest
import sqlalchemy as sa

from sextant.api import api_pb2
from tests.integration.conftest import create_database, running_db_manager
from tests.integration.test_store_resources import trial

DRIVERS = ["pymysql", "mysqldb"]


@pytest.fixture(params=DRIVERS)
def mariadb_url(request, tmp_path):
    module = {"pymysql": "pymysql", "mysqldb": "MySQLdb"}[request.param]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install 'sextant[mysqlclient]')")
    url, drop = create_database("mariadb", tmp_path)
    try:
        yield sa.engine.make_url(url).set(drivername=f"mysql+{request.param}").render_as_string(hide_password=False)
    finally:
        drop()


def test_db_manager_round_trip_through_each_driver(mariadb_url):
    from services.db_manager.database import Database, migrate

    db = Database(mariadb_url)
    assert db.engine.dialect.driver == mariadb_url.split("+")[1].split(":")[0]
    try:
        migrate(db)
    finally:
        db.dispose()
    with running_db_manager(mariadb_url, max_workers=8) as manager:
        stub = manager.dbmanager_stub()
        logs = [api_pb2.MetricLog(time_stamp=f"2024-05-01T10:00:0{i}Z",
                                  metric=api_pb2.Metric(name="loss", value=str(1 / (i + 1))))
                for i in range(5)]
        stub.ReportObservationLog(api_pb2.ReportObservationLogRequest(
            trial_name="t1", observation_log=api_pb2.ObservationLog(metric_logs=logs)))
        reply = stub.GetObservationLog(api_pb2.GetObservationLogRequest(trial_name="t1", metric_name="loss"))
        assert [m.metric.value for m in reply.observation_log.metric_logs] == [str(1 / (i + 1)) for i in range(5)]

        store = manager.store()
        created = store.create(trial("t1", labels={"katib.kubeflow.org/experiment": "e1"}))
        assert store.get("Trial", "default", "t1").metadata.uid == created.metadata.uid
