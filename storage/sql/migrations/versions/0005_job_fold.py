"""A job records the character fold applied before its model (``fold``: the Traditional ->
Simplified table's name and hash, or NULL for none), part of its provenance beside the model hash.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("fold", sa.String(40)))


def downgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.drop_column("fold")
