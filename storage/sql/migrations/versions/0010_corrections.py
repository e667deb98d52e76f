"""Corrections (gold) of a job's documents are stored as a job of their own (``job.gold_of``: the
job whose documents were corrected; ``job.gold_source``: the annotation export they came from, as
JSON): its documents are the corrected ones, its entities the annotators', ``source`` ``gold``.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("job", sa.Column("gold_of", sa.String(32)))
    op.add_column("job", sa.Column("gold_source", sa.Text))
    op.create_index("ix_job_gold_of", "job", ["gold_of"])


def downgrade() -> None:
    op.drop_index("ix_job_gold_of", table_name="job")
    with op.batch_alter_table("job") as batch:
        batch.drop_column("gold_source")
        batch.drop_column("gold_of")
