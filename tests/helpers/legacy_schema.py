"""Frozen copy of ``storage/sql/schema.py`` as the last release before migrations shipped it (commit
63acec3): its ``create_all`` makes the databases that release's users have. The upgrade test
builds one with this and upgrades it in place. Never edit to follow the current schema."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

job = Table(
    "job",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),  # keyset order of listings
    Column("id", String(32), nullable=False, unique=True),
    Column("name", String(200)),
    Column("client_token", String(200), unique=True),
    Column("status", String(20), nullable=False),
    Column("sealed", Boolean, nullable=False, default=False),  # every document stored
    Column("total", Integer, nullable=False, default=0),
    Column("done", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("cancelled", Integer, nullable=False, default=0),
    Column("chars_total", Integer, nullable=False, default=0),
    Column("chars_done", Integer, nullable=False, default=0),
    Column("submitted_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Index(None, "status", "seq"),
)

document = Table(
    "document",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(32), ForeignKey("job.id"), nullable=False),
    Column("ext_id", String(1000), nullable=False),
    Column("line", Integer),  # 1-based record position in the source (line for JSONL/CSV/txt)
    Column("text", Text, nullable=False),  # the exact text the model sees ("" if rejected)
    Column("n_chars", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("reason", String(40)),
    Column("error", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_token", String(32)),
    Column("lease_expires_at", Float),
    Column("queued_at", Float),
    Column("updated_at", Float),
    UniqueConstraint("job_id", "ext_id"),
    # id last: next_pending/failures read "status X of job J in id order" as one index range
    # (PostgreSQL does not keep equal keys in id order; without it, it scans or sorts the job).
    Index(None, "job_id", "status", "id"),
    Index(None, "status", "lease_expires_at"),
)

entity = Table(
    "entity",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(32), nullable=False),
    Column("document_id", Integer, ForeignKey("document.id"), nullable=False),
    Column("start", Integer, nullable=False),
    Column("end", Integer, nullable=False),
    Column("label", String(20), nullable=False),
    Column("text", Text, nullable=False),
    Column("score", Float, nullable=False),
    UniqueConstraint("document_id", "start", "end", "label"),
    # id last: entity pages are keyset-ordered by id, so a filtered page is one index range
    # on PostgreSQL too (SQLite appends the rowid implicitly). (job_id, label, text) prefix
    # also serves top_entities' GROUP BY.
    Index(None, "job_id", "label", "text", "id"),
    Index(None, "job_id", "text", "id"),
)
