"""Reuse by content: each document's text hash, the recipe a done document was tagged with, the
index an incremental job looks donors up by, and on the job whether it reuses and how many it did. Existing rows get neither (they are never
reused: their recipe is unknown).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite has it): a batch operation would rebuild job and document, which
    # other tables reference, and SQLite refuses to drop a referenced table.
    op.add_column("document", sa.Column("text_hash", sa.String(64)))
    op.add_column("document", sa.Column("recipe", sa.String(32)))
    op.create_index("ix_document_recipe_text_hash", "document", ["recipe", "text_hash"])
    op.add_column("job", sa.Column("incremental", sa.Boolean, nullable=False, server_default="0"))
    op.add_column("job", sa.Column("reused", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.drop_column("reused")
        batch.drop_column("incremental")
    op.drop_index("ix_document_recipe_text_hash", table_name="document")
    with op.batch_alter_table("document") as batch:
        batch.drop_column("recipe")
        batch.drop_column("text_hash")
