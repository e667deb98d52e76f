"""Read-only views for the people who query the database directly (docs/sql.md):
``shiti_entities`` (one row per entity, with the document id as submitted and the job's
provenance) and ``shiti_documents`` (one row per document). Their columns are a stable interface:
``tests/component/test_sql_views.py`` fails when a migration changes them.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ENTITIES = """
CREATE VIEW shiti_entities AS
SELECT e.job_id AS job_id, d.ext_id AS doc_id, e.start AS start, e."end" AS "end", e.label AS label,
       e.text AS text, e.score AS score, e.source AS source, j.model AS model, j.model_hash AS model_hash,
       j.dictionary AS dictionary, e.id AS entity_id
FROM entity e JOIN document d ON d.id = e.document_id JOIN job j ON j.id = e.job_id
"""

DOCUMENTS = """
CREATE VIEW shiti_documents AS
SELECT d.job_id AS job_id, d.ext_id AS doc_id, d.line AS line, d.status AS state, d.reason AS reason,
       d.error AS error, d.attempts AS attempts, d.n_chars AS n_chars, d.text AS text, d.id AS document_id
FROM document d
"""


def upgrade() -> None:
    op.execute(ENTITIES)
    op.execute(DOCUMENTS)


def downgrade() -> None:
    op.execute("DROP VIEW shiti_documents")
    op.execute("DROP VIEW shiti_entities")
