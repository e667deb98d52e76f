"""Baseline: the job, document and entity tables as the releases before migrations created them.

Frozen: later schema changes are new revisions, never edits here (a database stamped with this
revision must have exactly these tables).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("client_token", sa.String(200)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("sealed", sa.Boolean(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("cancelled", sa.Integer(), nullable=False),
        sa.Column("chars_total", sa.Integer(), nullable=False),
        sa.Column("chars_done", sa.Integer(), nullable=False),
        sa.Column("submitted_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float()),
        sa.Column("finished_at", sa.Float()),
        sa.PrimaryKeyConstraint("seq", name="pk_job"),
        sa.UniqueConstraint("id", name="uq_job_id"),
        sa.UniqueConstraint("client_token", name="uq_job_client_token"),
    )
    op.create_index("ix_job_status_seq", "job", ["status", "seq"])
    op.create_table(
        "document",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("ext_id", sa.String(1000), nullable=False),
        sa.Column("line", sa.Integer()),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("n_chars", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(40)),
        sa.Column("error", sa.Text()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_token", sa.String(32)),
        sa.Column("lease_expires_at", sa.Float()),
        sa.Column("queued_at", sa.Float()),
        sa.Column("updated_at", sa.Float()),
        sa.PrimaryKeyConstraint("id", name="pk_document"),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], name="fk_document_job_id_job"),
        sa.UniqueConstraint("job_id", "ext_id", name="uq_document_job_id_ext_id"),
    )
    op.create_index("ix_document_job_id_status_id", "document", ["job_id", "status", "id"])
    op.create_index("ix_document_status_lease_expires_at", "document", ["status", "lease_expires_at"])
    op.create_table(
        "entity",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("end", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_entity"),
        sa.ForeignKeyConstraint(["document_id"], ["document.id"], name="fk_entity_document_id_document"),
        sa.UniqueConstraint("document_id", "start", "end", "label", name="uq_entity_document_id_start_end_label"),
    )
    op.create_index("ix_entity_job_id_label_text_id", "entity", ["job_id", "label", "text", "id"])
    op.create_index("ix_entity_job_id_text_id", "entity", ["job_id", "text", "id"])


def downgrade() -> None:
    op.drop_table("entity")
    op.drop_table("document")
    op.drop_table("job")
