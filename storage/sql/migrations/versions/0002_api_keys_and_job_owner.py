"""API keys (stored hashed) and the key that owns each job.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("scope", sa.String(20), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_used_at", sa.Float()),
        sa.PrimaryKeyConstraint("id", name="pk_api_key"),
        sa.UniqueConstraint("name", name="uq_api_key_name"),
        sa.UniqueConstraint("key_hash", name="uq_api_key_key_hash"),
    )
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("owner", sa.String(100)))
        batch.create_index("ix_job_owner_seq", ["owner", "seq"])


def downgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.drop_index("ix_job_owner_seq")
        batch.drop_column("owner")
    op.drop_table("api_key")
