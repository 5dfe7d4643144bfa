"""Schema migrations: empty database, previous revision, and a database Katib created."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from services.db_manager.database import Database, current_revision, head_revision, migrate
from services.db_manager.observations import ObservationStore
from services.db_manager.schema import observation_logs

ROOT = Path(__file__).parents[2]

KATIB_DDL = {  # the table Katib's DB manager creates
    "mysql": "CREATE TABLE observation_logs (trial_name VARCHAR(255) NOT NULL, id INT AUTO_INCREMENT PRIMARY KEY,"
             " time DATETIME(6), metric_name VARCHAR(255) NOT NULL, value TEXT NOT NULL)",
    "postgresql": "CREATE TABLE observation_logs (trial_name VARCHAR(255) NOT NULL, id serial PRIMARY KEY,"
                  " time TIMESTAMP(6), metric_name VARCHAR(255) NOT NULL, value TEXT NOT NULL)",
    "sqlite": "CREATE TABLE observation_logs (trial_name VARCHAR(255) NOT NULL, id INTEGER PRIMARY KEY AUTOINCREMENT,"
              " time DATETIME, metric_name VARCHAR(255) NOT NULL, value TEXT NOT NULL)",
}


def tables(db: Database) -> set[str]:
    return set(sa.inspect(db.engine).get_table_names())


def test_upgrade_empty_database(db_url):
    db = Database(db_url)
    try:
        assert migrate(db) == head_revision() == "0003"
        assert {"observation_logs", "observation_batches", "resources", "resource_events", "store_state",
                "alembic_version"} <= tables(db)
        indexes = {i["name"] for i in sa.inspect(db.engine).get_indexes("observation_logs")}
        assert "ix_observation_logs_trial_metric_time" in indexes
        assert migrate(db) == "0003"  # idempotent
    finally:
        db.dispose()


def test_upgrade_from_previous_revision_keeps_rows(db_url):
    db = Database(db_url)
    try:
        assert migrate(db, "0001") == "0001"
        assert "resources" not in tables(db)
        with db.write() as conn:  # a row written by the DB manager of that revision
            conn.execute(observation_logs.insert(), {"trial_name": "t", "time": datetime(2024, 1, 1, 0, 0, 0, 123456),
                                                     "metric_name": "loss", "value": "1"})
        assert migrate(db) == "0003"
        assert ObservationStore(db).get("t") == [("2024-01-01T00:00:00.123456Z", "loss", "1")]
        assert "resources" in tables(db)
    finally:
        db.dispose()


def test_adopts_katib_created_table(db_url):
    db = Database(db_url)
    try:
        with db.write() as conn:
            conn.execute(sa.text(KATIB_DDL[db.backend]))
            conn.execute(sa.text("INSERT INTO observation_logs (trial_name, time, metric_name, value) "
                                 "VALUES ('katib-trial', '2023-03-04 05:06:07.890000', 'acc', '0.8')"))
        assert current_revision(db) is None
        assert migrate(db) == "0003"
        assert ObservationStore(db).get("katib-trial") == [("2023-03-04T05:06:07.89Z", "acc", "0.8")]
    finally:
        db.dispose()


def test_migrate_command(db_url, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "services.db_manager", "migrate", "--db-url", db_url,
                          "--data-dir", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    db = Database(db_url)
    try:
        assert current_revision(db) == "0003"
    finally:
        db.dispose()


def test_no_migrate_refuses_an_unmigrated_database(db_url, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SKIP_DB_INITIALIZATION": "true"}
    out = subprocess.run([sys.executable, "-m", "services.db_manager", "--port", "0", "--db-url", db_url,
                          "--data-dir", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1
    assert "run `python -m services.db_manager migrate`" in out.stderr


def test_password_never_logged(tmp_path):
    secret = "hunter2-do-not-log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DB_NAME": "mysql", "DB_PASSWORD": secret,
           "KATIB_MYSQL_DB_HOST": "127.0.0.1", "KATIB_MYSQL_DB_DATABASE": "sextant_no_such_db"}
    out = subprocess.run([sys.executable, "-m", "services.db_manager", "--port", "0", "--connect-timeout", "1",
                          "--data-dir", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode != 0
    assert "127.0.0.1" in out.stderr + out.stdout  # it did log which database it tried
    assert secret not in out.stderr + out.stdout
