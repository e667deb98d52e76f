"""A job records how its ingest ended: ``error`` (why it failed, and how many documents were
stored) and ``ingest_at`` (when its ingest last stored a chunk), so a job whose ingest was
interrupted never waits for ever: the reconciler fails it once ``ingest_at`` is stale.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("error", sa.Text()))
        batch.add_column(sa.Column("ingest_at", sa.Float()))


def downgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.drop_column("ingest_at")
        batch.drop_column("error")
