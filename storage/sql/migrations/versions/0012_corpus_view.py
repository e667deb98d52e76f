"""The corpus view (storage/sql/groups.py): a job's canonical entities (``entity_group``), every
surface text and its group (``entity_surface``), the strongest co-occurring pairs
(``entity_pair``), and on the job when they were grouped, over how many done documents, and
since when a build is under way.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("job", sa.Column("grouped_at", sa.Float))
    op.add_column("job", sa.Column("grouped_done", sa.Integer))
    op.add_column("job", sa.Column("grouping_at", sa.Float))
    op.create_table(
        "entity_group",
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("label", sa.String(20), nullable=False),
        sa.Column("canon", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("mentions", sa.Integer, nullable=False),
        sa.Column("documents", sa.Integer, nullable=False),
        sa.Column("forms", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("job_id", "rank", name="pk_entity_group"),
    )
    op.create_index("ix_entity_group_job_id_label_rank", "entity_group", ["job_id", "label", "rank"])
    op.create_index("ix_entity_group_job_id_canon", "entity_group", ["job_id", "canon"])
    op.create_table(
        "entity_surface",
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("label", sa.String(20), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("mentions", sa.Integer, nullable=False),
        sa.Column("documents", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("job_id", "label", "text", name="pk_entity_surface"),
    )
    op.create_index("ix_entity_surface_job_id_rank", "entity_surface", ["job_id", "rank"])
    op.create_table(
        "entity_pair",
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("a", sa.Integer, nullable=False),
        sa.Column("b", sa.Integer, nullable=False),
        sa.Column("documents", sa.Integer, nullable=False),
        sa.Column("jaccard", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("job_id", "a", "b", name="pk_entity_pair"),
    )
    op.create_index("ix_entity_pair_job_id_documents", "entity_pair", ["job_id", "documents"])
    op.create_index("ix_entity_pair_job_id_jaccard", "entity_pair", ["job_id", "jaccard"])
    op.create_index("ix_entity_pair_job_id_b", "entity_pair", ["job_id", "b"])


def downgrade() -> None:
    op.drop_table("entity_pair")
    op.drop_table("entity_surface")
    op.drop_table("entity_group")
    with op.batch_alter_table("job") as batch:
        batch.drop_column("grouping_at")
        batch.drop_column("grouped_done")
        batch.drop_column("grouped_at")
