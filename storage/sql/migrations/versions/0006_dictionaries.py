"""User dictionaries: the ``dictionary`` table (one row per version), the dictionary a job applies
(``job.dictionary_id``, ``job.dictionary`` as name@version, ``job.dictionary_hash``), and each
entity's ``source`` (model, dict or both; existing rows are the model's).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dictionary",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("entries", sa.Integer, nullable=False),
        sa.Column("types", sa.String(200), nullable=False),
        sa.Column("owner", sa.String(100)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dictionary"),
        sa.UniqueConstraint("name", "version", name="uq_dictionary_name_version"),
    )
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("dictionary_id", sa.Integer))
        batch.add_column(sa.Column("dictionary", sa.String(120)))
        batch.add_column(sa.Column("dictionary_hash", sa.String(64)))
    with op.batch_alter_table("entity") as batch:
        batch.add_column(sa.Column("source", sa.String(10), nullable=False, server_default="model"))


def downgrade() -> None:
    with op.batch_alter_table("entity") as batch:
        batch.drop_column("source")
    with op.batch_alter_table("job") as batch:
        batch.drop_column("dictionary_hash")
        batch.drop_column("dictionary")
        batch.drop_column("dictionary_id")
    op.drop_table("dictionary")
