"""resource store tables (resources, resource_events, store_state) and the observation log index

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLE_ARGS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin", "mysql_engine": "InnoDB"}


def big_text():
    return sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    # Katib has no index here; every GetObservationLog filters on these columns, in this order.
    op.create_index("ix_observation_logs_trial_metric_time", "observation_logs",
                    ["trial_name", "metric_name", "time"])
    op.create_table(
        "resources",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("uid", sa.String(36), nullable=False),
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
        sa.UniqueConstraint("uid", name="uq_resources_uid"),
        **TABLE_ARGS,
    )
    op.create_index("ix_resources_namespace", "resources", ["namespace"])
    op.create_table(
        "resource_events",
        sa.Column("resource_version", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("snapshot", big_text(), nullable=False),
        **TABLE_ARGS,
    )
    state = op.create_table(
        "store_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("resource_version", sa.BigInteger, nullable=False),
        sa.Column("compacted_version", sa.BigInteger, nullable=False),
        **TABLE_ARGS,
    )
    op.bulk_insert(state, [{"id": 1, "resource_version": 0, "compacted_version": 0}])


def downgrade() -> None:
    op.drop_table("store_state")
    op.drop_table("resource_events")
    op.drop_index("ix_resources_namespace", table_name="resources")
    op.drop_table("resources")
    op.drop_index("ix_observation_logs_trial_metric_time", table_name="observation_logs")
