"""An index on a document's job and text hash: an incremental job holds back a document whose
text an earlier one of the job is tagging (storage/sql/repo.py ``next_pending``) and fills it from
that one (``_finish_twins``), one index lookup each.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_document_job_id_text_hash", "document", ["job_id", "text_hash"])


def downgrade() -> None:
    op.drop_index("ix_document_job_id_text_hash", table_name="document")
