"""Per-job models (provenance), fair-share dispatch, reruns and completion webhooks.

Jobs from before this revision keep ``model`` NULL: they are served by the deployment's default
model (``SHITI_MODEL``), as they were.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("model", sa.String(200)))
        batch.add_column(sa.Column("model_hash", sa.String(64)))
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("vtime", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("notify_url", sa.Text()))
        batch.add_column(sa.Column("rerun_of", sa.String(32)))
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("last_attempt_at", sa.Float()),
        sa.Column("last_error", sa.Text()),
        sa.Column("delivered_at", sa.Float()),
        sa.PrimaryKeyConstraint("id", name="pk_notification"),
        sa.UniqueConstraint("event_id", name="uq_notification_event_id"),
    )
    op.create_index("ix_notification_state_next_attempt_at", "notification", ["state", "next_attempt_at"])
    op.create_index("ix_notification_job_id_id", "notification", ["job_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_notification_job_id_id", table_name="notification")
    op.drop_index("ix_notification_state_next_attempt_at", table_name="notification")
    op.drop_table("notification")
    with op.batch_alter_table("job") as batch:
        for name in ("rerun_of", "notify_url", "vtime", "priority", "model_hash", "model"):
            batch.drop_column(name)
