"""SQLAlchemy table definitions (the schema itself is created only by the alembic migrations).

``observation_logs`` keeps Katib's columns so an existing Katib database is adopted as is.
Resources are documents: Kubernetes-style metadata in columns, spec and status as JSON text.
Every write appends to ``resource_events`` under a store-wide ``resource_version`` taken from
the single ``store_state`` row in the same transaction; that row's lock also orders commits,
so a reader that saw version N has seen every change up to N.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

metadata = sa.MetaData()


def big_text() -> sa.types.TypeEngine[Any]:
    # MySQL's TEXT stops at 64 KiB; a Suggestion's status with thousands of assignments does not.
    return sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def micro_datetime() -> sa.types.TypeEngine[Any]:
    return (sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
            .with_variant(postgresql.TIMESTAMP(precision=6), "postgresql"))


observation_logs = sa.Table(
    "observation_logs", metadata,
    sa.Column("trial_name", sa.String(255), nullable=False),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", micro_datetime(), nullable=True),
    sa.Column("metric_name", sa.String(255), nullable=False),
    sa.Column("value", sa.Text, nullable=False),
)

# One row per stored ReportObservationLog batch: (trial, digest of its logs). A repeated batch
# fails to insert its row, so it is not stored twice (``observations.ObservationStore.report``).
observation_batches = sa.Table(
    "observation_batches", metadata,
    sa.Column("trial_name", sa.String(255), nullable=False),
    sa.Column("digest", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("trial_name", "digest", name="pk_observation_batches"),
)

resources = sa.Table(
    "resources", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("namespace", sa.String(63), nullable=False),
    sa.Column("name", sa.String(253), nullable=False),
    sa.Column("uid", sa.String(36), nullable=False, unique=True),
    sa.Column("api_version", sa.String(128), nullable=False),
    sa.Column("resource_version", sa.BigInteger, nullable=False),
    sa.Column("generation", sa.BigInteger, nullable=False),
    sa.Column("labels", big_text(), nullable=False),
    sa.Column("annotations", big_text(), nullable=False),
    sa.Column("owner_references", big_text(), nullable=False),
    sa.Column("creation_timestamp", sa.String(40), nullable=False),
    sa.Column("spec", big_text(), nullable=False),
    sa.Column("status", big_text(), nullable=False),
    sa.UniqueConstraint("kind", "namespace", "name", name="uq_resources_kind_namespace_name"),
)

resource_events = sa.Table(
    "resource_events", metadata,
    sa.Column("resource_version", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("namespace", sa.String(63), nullable=False),
    sa.Column("name", sa.String(253), nullable=False),
    sa.Column("snapshot", big_text(), nullable=False),
)

store_state = sa.Table(
    "store_state", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("resource_version", sa.BigInteger, nullable=False),
    # Highest version whose event was pruned: a watch from below it has lost history.
    sa.Column("compacted_version", sa.BigInteger, nullable=False),
)
