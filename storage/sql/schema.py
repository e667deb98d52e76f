"""SQLAlchemy 2.x tables: job, document, entity, the corpus views' entity_group, entity_surface and
entity_pair, dictionary, api_key, notification. Changes go with an Alembic revision
(``storage/sql/migrations/versions``).

Timestamps are epoch seconds (float): portable across SQLite and PostgreSQL and trivially
comparable in conditional UPDATEs (lease expiry).
"""

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

# The Alembic revision these tables are (storage/sql/migrations/versions): set it with every new
# revision file; tests/component/test_migrations.py fails while it is not the newest.
SCHEMA_REVISION = "0012"

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
    Column("owner", String(100)),  # the API key name that submitted it (None: the CLI or an open API)
    # Provenance: the model that tags the job (None: a job from before revision 0003, served by the
    # deployment's default model) and its content hash (storage/catalog.py).
    Column("model", String(200)),
    Column("model_hash", String(64)),
    # Fair share (storage/broker/dispatch.py): a batch of c characters adds c / priority to vtime; dispatch
    # serves the job of a model with the least vtime first.
    Column("priority", Integer, nullable=False, default=1, server_default="1"),
    Column("vtime", Float, nullable=False, default=0.0, server_default="0"),
    Column("notify_url", Text),  # completion webhook (storage/webhook/http.py)
    Column("rerun_of", String(32)),  # the job whose stored documents this one re-tags
    # How ingest ended (revision 0004): why it failed (None: it did not), and when it last stored
    # a chunk of documents (an unsealed job whose ingest_at is stale was interrupted).
    Column("error", Text),
    Column("ingest_at", Float),
    # The character fold applied before the model (revision 0005; storage/core/fold.py): its name
    # and table hash, e.g. "t2s-8288eef5e563"; None: none (turned off, or a job from before).
    Column("fold", String(40)),
    # The user dictionary applied after the model (revision 0006; storage/core/lexicon.py): its row,
    # its name and version ("places@2") and its content hash; None: no dictionary.
    Column("dictionary_id", Integer),
    Column("dictionary", String(120)),
    Column("dictionary_hash", String(64)),
    # Reuse by content (revision 0007): whether the job reuses identical earlier documents' entities,
    # and how many of its documents it did reuse.
    Column("incremental", Boolean, nullable=False, default=False, server_default="0"),
    Column("reused", Integer, nullable=False, default=0, server_default="0"),
    # Paused (revision 0009): dispatch hands out no batch of it; running documents finish.
    Column("paused", Boolean, nullable=False, default=False, server_default="0"),
    # Corrections (revision 0010; storage/sql/gold.py): a job holding annotators' corrections of
    # another job's documents names that job, and the export they were read from (JSON); None: a
    # job a model tagged.
    Column("gold_of", String(32)),
    Column("gold_source", Text),
    # The corpus view (revision 0012; storage/sql/groups.py): when its canonical entities were last
    # grouped and how many done documents that covered (current while both still hold), and since
    # when a build is under way (None: none), so two readers do not build one view twice.
    Column("grouped_at", Float),
    Column("grouped_done", Integer),
    Column("grouping_at", Float),
    Index(None, "status", "seq"),
    Index(None, "gold_of"),
    Index(None, "owner", "seq"),
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
    # Reuse by content (revision 0007; storage/core/recipe.py): the sha256 of the text, and the
    # recipe a done document was tagged with (model, dictionary, fold, windows); an incremental job
    # copies the entities of a done document with the same text and recipe instead of tagging.
    Column("text_hash", String(64)),
    Column("recipe", String(32)),
    UniqueConstraint("job_id", "ext_id"),
    # id last: next_pending/failures read "status X of job J in id order" as one index range
    # (PostgreSQL does not keep equal keys in id order; without it, it scans or sorts the job).
    Index(None, "job_id", "status", "id"),
    Index(None, "status", "lease_expires_at"),
    Index(None, "recipe", "text_hash"),
    Index(None, "job_id", "text_hash"),  # revision 0011: a text repeated within an incremental job
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
    # model | dict | both | gold (storage.core.domain.SOURCES; revision 0006): who found it.
    Column("source", String(10), nullable=False, default="model", server_default="model"),
    UniqueConstraint("document_id", "start", "end", "label"),
    # id last: entity pages are keyset-ordered by id, so a filtered page is one index range
    # on PostgreSQL too (SQLite appends the rowid implicitly). (job_id, label, text) prefix
    # also serves top_entities' GROUP BY.
    Index(None, "job_id", "label", "text", "id"),
    Index(None, "job_id", "text", "id"),
)

# The corpus view of a job (storage/sql/groups.py), rebuilt from its entities as a whole: one row per
# canonical entity (type + canonical form, storage/core/canon.py), numbered by rank (most documents
# first), so a listing page is one index range.
entity_group = Table(
    "entity_group",
    metadata,
    Column("job_id", String(32), primary_key=True),
    Column("rank", Integer, primary_key=True),  # 1 = in the most documents
    Column("label", String(20), nullable=False),
    Column("canon", Text, nullable=False),
    Column("name", Text, nullable=False),  # the dictionary entry's text, else the commonest form
    Column("mentions", Integer, nullable=False),
    Column("documents", Integer, nullable=False),
    Column("forms", Integer, nullable=False),  # distinct surface texts
    Index(None, "job_id", "label", "rank"),
    Index(None, "job_id", "canon"),
)

# Every surface text of a job's entities and the group it belongs to: how "documents mentioning X
# or its aliases" finds the texts to look up in ``entity``.
entity_surface = Table(
    "entity_surface",
    metadata,
    Column("job_id", String(32), primary_key=True),
    Column("label", String(20), primary_key=True),
    Column("text", Text, primary_key=True),
    Column("rank", Integer, nullable=False),
    Column("mentions", Integer, nullable=False),
    Column("documents", Integer, nullable=False),
    Index(None, "job_id", "rank"),
)

# Pairs of a job's top groups mentioned in the same documents (a < b, by rank).
entity_pair = Table(
    "entity_pair",
    metadata,
    Column("job_id", String(32), primary_key=True),
    Column("a", Integer, primary_key=True),
    Column("b", Integer, primary_key=True),
    Column("documents", Integer, nullable=False),  # documents mentioning both
    Column("jaccard", Float, nullable=False),  # documents / documents mentioning either
    Index(None, "job_id", "documents"),
    Index(None, "job_id", "jaccard"),
    Index(None, "job_id", "b"),
)

# A user dictionary, one row per version (storage/core/lexicon.py). ``content`` is canonical, so
# ``content_hash`` names the entries, not the file they came in.
dictionary = Table(
    "dictionary",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("content", Text, nullable=False),
    Column("entries", Integer, nullable=False),
    Column("types", String(200), nullable=False),  # the entity types it names, comma-separated
    Column("owner", String(100)),  # the API key name that created it (None: the CLI or an open API)
    Column("created_at", Float, nullable=False),
    UniqueConstraint("name", "version"),
)

api_key = Table(
    "api_key",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("scope", String(20), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),  # sha256 hex: the key is never stored
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float),
)


# One completion event of a job for its webhook: written in the transaction that makes the job
# terminal, delivered at least once by the workers' notifier (storage/webhook/http.py).
notification = Table(
    "notification",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(32), nullable=False),
    Column("event_id", String(32), nullable=False, unique=True),  # the idempotency key receivers dedupe on
    Column("url", Text, nullable=False),
    Column("body", Text, nullable=False),  # the exact JSON signed and sent on every attempt
    Column("state", String(20), nullable=False),  # pending | delivered | given_up
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    Column("last_attempt_at", Float),
    Column("last_error", Text),
    Column("delivered_at", Float),
    Index(None, "state", "next_attempt_at"),
    Index(None, "job_id", "id"),
)
