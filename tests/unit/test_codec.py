"""Wire/document/model conversion, RFC3339 handling, name rules and database URL resolution."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from services.db_manager.database import HEAD_REVISION, DatabaseConfigError, head_revision, mask, resolve_url
from sextant.api import store_pb2
from sextant.config import mysql_driver
from sextant.resources.models import ObjectMeta, OwnerReference, Trial
from sextant.store.codec import doc_from_proto, from_model, parse_version, proto_from_doc, to_model
from sextant.store.interface import Invalid
from sextant.store.names import name_errors, namespace_errors
from sextant.timestamps import BadTimestamp, format_rfc3339_nano, parse_rfc3339_strict


def test_model_round_trip_keeps_metadata_and_version_types():
    t = Trial(metadata=ObjectMeta(name="t1", namespace="ns", uid="u", resource_version="42", generation=3,
                                  labels={"a": "b"}, annotations={"c": "d"},
                                  owner_references=[OwnerReference(kind="Experiment", name="e", uid="x")],
                                  creation_timestamp="2024-01-01T00:00:00Z"))
    t.status.start_time = "2024-01-01T00:00:01Z"
    pb = from_model(t)
    assert pb.metadata.resource_version == 42 and pb.kind == "Trial"
    back = to_model(pb)
    assert back == t and back.metadata.resource_version == "42"


def test_empty_version_is_zero_and_garbage_is_invalid():
    assert parse_version("") == 0 and parse_version("7") == 7
    with pytest.raises(Invalid):
        parse_version("seven")
    with pytest.raises(Invalid):
        proto_from_doc({"kind": "Trial", "metadata": {"resourceVersion": "x"}})


def test_bad_json_is_invalid():
    with pytest.raises(Invalid) as err:
        doc_from_proto(store_pb2.Resource(kind="Trial", spec_json="{"))
    assert "spec" in str(err.value)
    with pytest.raises(Invalid):
        to_model(store_pb2.Resource(kind="Pod"))


@pytest.mark.parametrize("text,expected", [
    ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10)),
    ("2024-05-01T10:00:00.123456789Z", datetime(2024, 5, 1, 10, 0, 0, 123456)),
    ("2024-05-01t12:30:00+02:30", datetime(2024, 5, 1, 10)),
    ("2024-05-01T00:00:00-01:00", datetime(2024, 5, 1, 1)),
    ("0001-01-01T00:00:00Z", datetime(1, 1, 1)),
])
def test_parse_rfc3339(text, expected):
    assert parse_rfc3339_strict(text) == expected


@pytest.mark.parametrize("text", ["", "2024-05-01", "2024-05-01T10:00:00", "2024-05-01T10:00:00.Z",
                                  "2024-02-30T00:00:00Z", "0001-01-01T00:00:00+00:01", "2024-05-01T10:00:00+24:00"])
def test_parse_rfc3339_rejects(text):
    with pytest.raises(BadTimestamp):
        parse_rfc3339_strict(text)


@pytest.mark.parametrize("value,text", [
    (datetime(2024, 5, 1, 5, 27, 27), "2024-05-01T05:27:27Z"),
    (datetime(2024, 5, 1, 5, 27, 27, 500000), "2024-05-01T05:27:27.5Z"),
    (datetime(2024, 5, 1, 5, 27, 27, 10), "2024-05-01T05:27:27.00001Z"),
    (datetime(1, 1, 1), "0001-01-01T00:00:00Z"),
])
def test_format_trims_like_go(value, text):
    assert format_rfc3339_nano(value) == text


def test_name_rules():
    assert not name_errors("a-b.c-1") and name_errors("A") and name_errors("a_b") and name_errors("")
    assert name_errors("a" * 254) and not name_errors("a" * 253)
    assert not namespace_errors("kubeflow") and namespace_errors("a.b") and namespace_errors("a" * 64)


def test_database_url_resolution_and_masking(tmp_path: Path):
    assert resolve_url(None, tmp_path, {}).database == str(tmp_path / "sextant.db")
    url = resolve_url(None, tmp_path, {"DB_NAME": "mysql", "DB_PASSWORD": "s3cret"})
    assert (url.drivername, url.host, url.port, url.database, url.username) == \
        (mysql_driver(), "katib-mysql", 3306, "katib", "root")
    assert "s3cret" not in mask(url) and "s3cret" not in mask(str(url.render_as_string(False)))
    pg = resolve_url(None, tmp_path, {"DB_NAME": "postgres", "KATIB_POSTGRESQL_DB_HOST": "h",
                                      "KATIB_POSTGRESQL_SSL_MODE": "require"})
    assert (pg.drivername, pg.host, pg.port, pg.username, pg.query["sslmode"]) == \
        ("postgresql+psycopg", "h", 5432, "katib", "require")
    assert resolve_url("mariadb://u:p@db/x", tmp_path, {}).drivername == mysql_driver()
    # A URL naming mysqlclient still works where only PyMySQL is installed, and the reverse.
    assert resolve_url("mysql+mysqldb://db/x", tmp_path, {}).drivername == mysql_driver()
    assert resolve_url("postgresql://db/x", tmp_path, {"DB_NAME": "mysql"}).drivername == "postgresql+psycopg"
    with pytest.raises(DatabaseConfigError):
        resolve_url(None, tmp_path, {"DB_NAME": "oracle"})


def test_head_revision_constant_matches_migrations():
    assert head_revision() == HEAD_REVISION


def test_mariadb_driver_falls_back_to_pymysql(monkeypatch, tmp_path: Path):
    import importlib.util

    from sextant.config import database_driver

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "MySQLdb" else real(name, *a))
    assert resolve_url("mysql://root@db/x", tmp_path, {}).drivername == "mysql+pymysql"
    assert resolve_url("mysql+mysqldb://root@db/x", tmp_path, {}).drivername == "mysql+pymysql"
    assert resolve_url(None, tmp_path, {"DB_NAME": "mysql"}).drivername == "mysql+pymysql"
    assert database_driver("mysql+mysqldb://root@db/x") == "PyMySQL"
    assert database_driver("sqlite:///x.db") == "sqlite3"
    assert database_driver("postgresql://db/x") == "psycopg"


def test_status_driver_is_the_one_the_url_gets():
    import importlib.util

    from sextant.config import database_driver

    installed = "mysqlclient" if importlib.util.find_spec("MySQLdb") else "PyMySQL"
    assert database_driver("mysql://root@db/x") == installed
    assert database_driver("mariadb+mysqldb://root@db/x") == installed
    assert database_driver("mysql+pymysql://root@db/x") == "PyMySQL"  # kept as named (resolve_url)
    assert database_driver("mariadb+pymysql://root@db/x") == "PyMySQL"
