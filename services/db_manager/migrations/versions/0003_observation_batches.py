"""observation_batches: a digest of every stored ReportObservationLog batch, so a repeated call
(a client retrying after a reply it never received) is recognised and not stored twice

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLE_ARGS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    # The primary key is the whole row: claiming a batch is one index insert, and a second claim
    # of the same batch fails on it (also while the first is still uncommitted on a server DB).
    op.create_table(
        "observation_batches",
        sa.Column("trial_name", sa.String(255), nullable=False),
        sa.Column("digest", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("trial_name", "digest", name="pk_observation_batches"),
        **TABLE_ARGS,
    )


def downgrade() -> None:
    op.drop_table("observation_batches")
