"""observation_logs with Katib's columns (adopts an existing Katib table as is)

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLE_ARGS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    bind = op.get_bind()
    if sa.inspect(bind).has_table("observation_logs"):
        # A Katib database: its table already has these columns; keep it and its rows.
        return
    op.create_table(
        "observation_logs",
        sa.Column("trial_name", sa.String(255), nullable=False),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("time", sa.DateTime()
                  .with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
                  .with_variant(postgresql.TIMESTAMP(precision=6), "postgresql"), nullable=True),
        sa.Column("metric_name", sa.String(255), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        **TABLE_ARGS,
    )


def downgrade() -> None:
    op.drop_table("observation_logs")
