"""The write path: jobs, ingest, claim under a lease, fenced saves, counters, recount, cancel.

Rules (docs/reliability.md §1, §4): every document transition is a conditional UPDATE whose
rowcount drives the job counters in the same transaction, so a duplicate or late delivery
changes nothing; the job's terminal state is set by the transaction that makes the last
document terminal (one atomic conditional UPDATE), and re-checked by ``recount``.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ARRAY, Connection, String, and_, any_, case, cast, delete, exists, func, insert, literal, null, \
    or_, select, update

from storage.sql.db import Database
from storage.core.domain import (
    DOC_CLAIMABLE,
    DOC_UNFINISHED,
    INPUT_REASONS,
    JOB_ACCEPTS_WORK,
    JOB_OPEN,
    JOB_RETRYABLE,
    ClaimedDocument,
    Outcome,
    Reason,
)
from storage.core.domain import DocumentStatus as D
from storage.core.domain import JobStatus as J
from storage.core.errors import InvalidTransition, NotFound
from storage.core.lexicon import DictionaryRef
from storage.core.recipe import text_hash
from storage.sql.schema import document, entity, job, notification

_OPEN = tuple(sorted(JOB_OPEN))
_ACCEPTS_WORK = tuple(sorted(JOB_ACCEPTS_WORK))
_CLAIMABLE = tuple(sorted(DOC_CLAIMABLE))


def new_id() -> str:
    """A fresh 32-hex-digit id (jobs, lease tokens)."""
    return uuid.uuid4().hex


def insert_ignore(conn: Connection, table: Any, rows: Sequence[dict[str, Any]], keys: list[str]) -> None:
    """Bulk INSERT ... ON CONFLICT DO NOTHING on ``keys`` (SQLite ≥ 3.24 and PostgreSQL)."""
    if not rows:
        return
    name = conn.dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(table).on_conflict_do_nothing(index_elements=keys), list(rows))
    elif name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(table).on_conflict_do_nothing(index_elements=keys), list(rows))
    else:  # pragma: no cover - other dialects: plain insert, the UNIQUE constraint still guards
        conn.execute(insert(table), list(rows))


# ---------------------------------------------------------------------------------- jobs, ingest


def create_job(db: Database, *, name: str | None = None, client_token: str | None = None,
               owner: str | None = None, model: str | None = None, model_hash: str | None = None,
               priority: int = 1, notify_url: str | None = None, rerun_of: str | None = None,
               fold: str | None = None, dictionary: DictionaryRef | None = None,
               incremental: bool = False) -> tuple[str, bool]:
    """Create a job, or find the one already created with ``client_token``.

    Args:
        owner: the API key name submitting it (its client tokens are its own: the same token
            from another key is another job).
        model, model_hash: the model that tags it and its content hash (provenance, routing).
        priority: its weight in the fair share of its model's workers (storage/broker/dispatch.py).
        notify_url: its completion webhook.
        rerun_of: the job whose stored documents it re-tags.
        fold: the character fold applied before its model (``storage.core.fold.fold_id``; None: none).
        dictionary: the user dictionary applied after it (None: none).
        incremental: reuse identical earlier documents' entities (:func:`reuse_done`).

    Returns:
        ``(job_id, created)``.
    """
    with db.write() as conn:
        if client_token is not None and owner is not None:
            client_token = f"{owner}\x1f{client_token}"  # a separator no key name contains
        now = time.time()
        if client_token is not None:
            found = conn.execute(select(job.c.id, job.c.status, job.c.error).where(
                job.c.client_token == client_token)).first()
            if found is not None:
                if found.status == J.FAILED and found.error is not None and found.error.startswith(INGEST_FAILED):
                    _reopen_ingest(conn, found.id, now)
                return found.id, False
        job_id = new_id()
        conn.execute(
            insert(job).values(
                id=job_id, name=name, client_token=client_token, owner=owner, status=J.SUBMITTED, sealed=False,
                total=0, done=0, failed=0, cancelled=0, chars_total=0, chars_done=0,
                submitted_at=now, ingest_at=now, model=model, model_hash=model_hash, priority=priority,
                vtime=0.0, notify_url=notify_url or None, rerun_of=rerun_of, fold=fold,
                dictionary_id=dictionary.id if dictionary else None,
                dictionary=dictionary.label if dictionary else None,
                dictionary_hash=dictionary.content_hash if dictionary else None,
                incremental=incremental, reused=0, paused=False,
            )
        )
        return job_id, True


#: How ``job.error`` of a job whose ingest failed begins (a resubmit with its token resumes it).
INGEST_FAILED = "ingest failed"


def _reopen_ingest(conn: Connection, job_id: str, now: float) -> None:
    # The same client token again: the caller re-reads the whole source, so the job goes back to
    # storing its documents; what the failed ingest stored (cancelled with reason ingest_failed)
    # is pending again, and the rows it did not store are added by the new ingest.
    conn.execute(update(document).where(
        document.c.job_id == job_id, document.c.status == D.CANCELLED, document.c.reason == Reason.INGEST_FAILED,
    ).values(status=D.PENDING, reason=None, updated_at=now))
    conn.execute(update(job).where(job.c.id == job_id).values(
        status=J.SUBMITTED, sealed=False, error=None, finished_at=None, ingest_at=now))


def insert_documents(db: Database, job_id: str, rows: Iterable[dict[str, Any]]) -> int:
    """Store one chunk of an upload's documents in one transaction and note the job's ingest as
    alive (``ingest_at``). Returns how many of them were second copies of an id.

    Each row: ``ext_id, line, text, n_chars, status`` and optionally ``reason, error``. A row
    whose ``(ext_id, line)`` is already stored is the same record read again (a resubmit with
    the job's client token) and is skipped. A row whose ``ext_id`` the job already holds at
    another line is a second copy of that id: it is stored as ``failed`` / ``duplicate_id``
    under the id :func:`duplicate_id` gives it, so every record read has a row.
    """
    now = time.time()
    batch = [{"job_id": job_id, "reason": None, "error": None, "attempts": 0, "updated_at": now, **row}
             for row in rows]
    with db.write() as conn:
        conn.execute(update(job).where(job.c.id == job_id).values(ingest_at=now))
        if not batch:
            return 0
        wanted = sorted({r["ext_id"] for r in batch})
        seen: dict[str, int | None] = {}
        if conn.dialect.name == "postgresql":  # one array parameter, not a placeholder per id to parse
            lookups = [document.c.ext_id == any_(cast(wanted, ARRAY(String)))]
        else:
            lookups = [document.c.ext_id.in_(wanted[i:i + 500]) for i in range(0, len(wanted), 500)]
        for cond in lookups:
            found = select(document.c.ext_id, document.c.line).where(document.c.job_id == job_id, cond)
            seen.update({e: line for e, line in conn.execute(found)})
        duplicates = 0
        for row in batch:
            first = seen.setdefault(row["ext_id"], row["line"])
            if first != row["line"]:
                duplicates += 1
                original = row["ext_id"]
                row.update(ext_id=duplicate_id(original, row["line"]), text="", n_chars=0, status=D.FAILED,
                           reason=Reason.DUPLICATE_ID,
                           error=f"line {row['line']}: document id {original[:100]!r} already at line {first}")
        for row in batch:
            row["text_hash"] = text_hash(row["text"]) if row["status"] == D.PENDING else None
        if conn.dialect.name == "postgresql":
            _copy_documents(conn, batch)
        else:
            insert_ignore(conn, document, batch, ["job_id", "ext_id"])
        return duplicates


def _copy_documents(conn: Connection, batch: Sequence[dict[str, Any]]) -> None:
    """PostgreSQL: the chunk through COPY into a session-local staging table, then one INSERT ...
    SELECT ... ON CONFLICT DO NOTHING (COPY itself cannot skip a row already stored). In the
    caller's transaction; the staging table empties at its commit or rollback."""
    names = list(dict.fromkeys(k for row in batch for k in row))
    unknown = set(names) - set(document.c.keys())
    if unknown:
        raise ValueError(f"not document columns: {sorted(unknown)}")
    cols = ", ".join(f'"{n}"' for n in names)
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        every = ", ".join(f'"{c.name}"' for c in document.c if c.name != "id")  # no serial: no id drawn here
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS shiti_stage_document ON COMMIT DELETE ROWS AS "
                    f"SELECT {every} FROM document WITH NO DATA")
        with cur.copy(f"COPY shiti_stage_document ({cols}) FROM STDIN") as copy:
            for row in batch:
                copy.write_row([row.get(n) for n in names])
        cur.execute(f"INSERT INTO document ({cols}) SELECT {cols} FROM shiti_stage_document "
                    "ON CONFLICT (job_id, ext_id) DO NOTHING")
    finally:
        cur.close()


def duplicate_id(ext_id: str, line: int | None) -> str:
    """The id under which the second copy of ``ext_id`` (read at ``line``) is stored: the
    original's first 900 characters and the line, so it fits the column and stays unique."""
    return f"{ext_id[:900]}#duplicate@{line}"


def fail_ingest(db: Database, job_id: str, why: str) -> int:
    """End a job whose ingest failed or was interrupted: its stored documents that wait for a
    worker are cancelled (reason ``ingest_failed``), the job is ``failed`` (``cancelled`` when
    a cancel came first), sealed, with ``error`` naming why and the count of documents stored.
    A resubmit with its client token resumes it (:func:`create_job`). Returns that count."""
    now = time.time()
    with db.write() as conn:
        status = conn.execute(select(job.c.status).where(job.c.id == job_id).with_for_update()).scalar()
        if status is None or status not in _OPEN:
            return 0
        conn.execute(update(document).where(document.c.job_id == job_id, document.c.status.in_(_CLAIMABLE))
                     .values(status=D.CANCELLED, reason=Reason.INGEST_FAILED, updated_at=now))
        values = _recount(conn, job_id)
        final = J.CANCELLED if status == J.CANCELLING else J.FAILED
        conn.execute(update(job).where(job.c.id == job_id).values(
            status=final, sealed=True, finished_at=now,
            error=f"{INGEST_FAILED} after {values['total']:,} documents were stored: {why}"[:4000]))
        _queue_notification(conn, job_id)
        return int(values["total"])


def discard_job(db: Database, job_id: str) -> None:
    """Delete a job that was never sealed and its documents (an upload refused part-way, e.g.
    over its key's quota: nothing of it stays)."""
    with db.write() as conn:
        conn.execute(delete(document).where(document.c.job_id == job_id))
        conn.execute(delete(job).where(job.c.id == job_id, job.c.sealed.is_(False)))


def fail_stale_ingests(db: Database, *, stale_after: float, now: float | None = None) -> list[str]:
    """Fail (:func:`fail_ingest`) open jobs still storing documents whose ingest stored nothing
    for ``stale_after`` seconds: the process that stored them died, or a release before 0004
    left them waiting for ever. Returns their ids."""
    now = time.time() if now is None else now
    with db.read() as conn:
        stale = list(conn.execute(select(job.c.id).where(
            job.c.sealed.is_(False), job.c.status.in_(_OPEN),
            func.coalesce(job.c.ingest_at, job.c.submitted_at) < now - stale_after)).scalars())
    for job_id in stale:
        fail_ingest(db, job_id, f"no document was stored for {stale_after:g} s (the submitting process stopped)")
    return stale


def copy_documents(db: Database, *, source_job: str, job_id: str) -> int:
    """Store ``source_job``'s documents again under ``job_id`` (a rerun: no re-upload), in one
    INSERT ... SELECT: the same ids, lines and texts; documents rejected at ingest stay rejected
    with their reason, every other one is pending with no attempt spent."""
    bad_input = and_(document.c.status == D.FAILED, document.c.reason.in_([r.value for r in INPUT_REASONS]))
    now = time.time()
    cols = ["job_id", "ext_id", "line", "text", "n_chars", "status", "reason", "error", "attempts", "updated_at",
            "text_hash"]
    rows = select(
        literal(job_id), document.c.ext_id, document.c.line, document.c.text, document.c.n_chars,
        case((bad_input, D.FAILED.value), else_=D.PENDING.value),
        case((bad_input, document.c.reason), else_=null()),
        case((bad_input, document.c.error), else_=null()),
        literal(0), literal(now), document.c.text_hash,
    ).where(document.c.job_id == source_job).order_by(document.c.id)
    with db.write() as conn:
        return int(conn.execute(insert(document).from_select(cols, rows)).rowcount or 0)


def seal_job(db: Database, job_id: str) -> dict[str, Any]:
    """Mark ingest complete, recount, and finish the job at once if nothing needs a worker.

    The job joins its model's fair share where the running jobs are now (their least ``vtime``)."""
    with db.write() as conn:
        _join_fair_share(conn, job_id)
        conn.execute(update(job).where(job.c.id == job_id).values(sealed=True))
        if conn.execute(select(job.c.status).where(job.c.id == job_id)).scalar() == J.CANCELLING:
            # Cancelled while its documents were being stored: those stored after the cancel are
            # cancelled too, or the job would wait for documents no worker is sent.
            conn.execute(update(document).where(document.c.job_id == job_id, document.c.status.in_(_CLAIMABLE))
                         .values(status=D.CANCELLED, reason=Reason.CANCELLED, updated_at=time.time()))
        _refresh_planner_stats(conn)
        return _recount(conn, job_id)


def _join_fair_share(conn: Connection, job_id: str) -> None:
    """Put the job at its model's running jobs' least virtual time (none running: leave it): a
    new job does not take every batch until it has caught up with them, and a reopened (retried)
    one does not wait behind the virtual time it had when it finished."""
    model = conn.execute(select(job.c.model).where(job.c.id == job_id)).scalar()
    floor = conn.execute(select(func.min(job.c.vtime)).where(
        job.c.model == model, job.c.id != job_id, job.c.sealed.is_(True),
        job.c.status.in_(_ACCEPTS_WORK))).scalar()
    if floor is not None:
        conn.execute(update(job).where(job.c.id == job_id).values(vtime=floor))


def _refresh_planner_stats(conn: Connection) -> None:
    # Without statistics SQLite takes ``status = 'pending'`` as selective and answers
    # "UPDATE ... WHERE id IN (64 ids) AND status = 'pending'" (mark_queued, claim) by walking
    # ix_document_status_lease_expires_at over every pending row, so dispatch slows with the
    # job's size (docs/cost-model.md, bench/scale_sql.py). A sampled ANALYZE is cheap and
    # makes it use the primary key. PostgreSQL keeps its own statistics (autovacuum).
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA analysis_limit=1000")
        conn.exec_driver_sql("ANALYZE")


def analyze_documents(db: Database) -> None:
    """PostgreSQL: refresh the document table's statistics now (SQLite: nothing to do here).

    Ingest calls it as a job's documents grow (service.submit_corpus): autovacuum analyzes a
    table only a minute or more after it has grown, and until then the planner takes a freshly
    filled table for a small one and answers each chunk's "which of these ids does the job hold"
    by reading every document of the job, so the first minutes of a large first ingest slow
    quadratically."""
    if db.dialect == "postgresql":
        with db.write() as conn:
            conn.exec_driver_sql("ANALYZE document")


def recount(db: Database, job_id: str) -> dict[str, Any]:
    """Recompute the job's counters from its document rows; finalize if all are terminal."""
    with db.write() as conn:
        return _recount(conn, job_id)


def _recount(conn: Connection, job_id: str) -> dict[str, Any]:
    # Lock the job row first (PostgreSQL): saves bump it last, so they serialize behind us and
    # our count snapshot can neither miss nor double a concurrent save.
    row = conn.execute(select(job.c.status).where(job.c.id == job_id).with_for_update()).first()
    if row is None:
        raise NotFound(f"no job {job_id}")
    counts = {s: (0, 0) for s in D}
    stmt = (
        select(document.c.status, func.count(), func.coalesce(func.sum(document.c.n_chars), 0))
        .where(document.c.job_id == job_id)
        .group_by(document.c.status)
    )
    for status, n, chars in conn.execute(stmt):
        counts[D(status)] = (int(n), int(chars))
    values = {
        "total": sum(n for n, _ in counts.values()),
        "done": counts[D.DONE][0],
        "failed": counts[D.FAILED][0],
        "cancelled": counts[D.CANCELLED][0],
        "chars_total": sum(c for _, c in counts.values()),
        "chars_done": counts[D.DONE][1],
    }
    conn.execute(update(job).where(job.c.id == job_id).values(**values))
    _finalize(conn, job_id)
    return values


def _finalize(conn: Connection, job_id: str) -> None:
    """Move an open, sealed job whose documents are all terminal to its terminal state."""
    final = case(
        (job.c.status == J.CANCELLING, J.CANCELLED.value),
        (job.c.failed == 0, J.SUCCEEDED.value),
        (job.c.done == 0, J.FAILED.value),
        else_=J.PARTIALLY_FAILED.value,
    )
    finished = conn.execute(
        update(job)
        .where(
            job.c.id == job_id,
            job.c.sealed.is_(True),
            job.c.status.in_(_OPEN),
            job.c.done + job.c.failed + job.c.cancelled >= job.c.total,
        )
        .values(status=final, finished_at=time.time())
    ).rowcount
    if finished:
        _queue_notification(conn, job_id)


def _queue_notification(conn: Connection, job_id: str) -> None:
    # In the transaction that made the job terminal: the event exists exactly when the state does.
    row = conn.execute(select(job).where(job.c.id == job_id)).mappings().first()
    if row is None or not row["notify_url"]:
        return
    now = time.time()
    event_id = new_id()
    conn.execute(insert(notification).values(
        job_id=job_id, event_id=event_id, url=row["notify_url"], body=json.dumps(event_body(row, event_id)),
        state="pending", attempts=0, created_at=now, next_attempt_at=now))


def event_body(row: Any, event_id: str) -> dict[str, Any]:
    """The completion event of a terminal job row (what its webhook receives)."""
    return {
        "event": "job.finished", "event_id": event_id, "job_id": row["id"], "name": row["name"],
        "state": row["status"], "total": row["total"], "done": row["done"], "failed": row["failed"],
        "cancelled": row["cancelled"], "chars_done": row["chars_done"],
        "model": row["model"], "model_hash": row["model_hash"], "fold": row["fold"],
        "dictionary": row["dictionary"], "dictionary_hash": row["dictionary_hash"], "rerun_of": row["rerun_of"],
        "submitted_at": row["submitted_at"], "finished_at": row["finished_at"],
    }


def _bump(conn: Connection, job_id: str, *, done: int = 0, failed: int = 0, cancelled: int = 0,
          chars_done: int = 0) -> None:
    if done or failed or cancelled or chars_done:
        conn.execute(
            update(job)
            .where(job.c.id == job_id)
            .values(
                done=job.c.done + done, failed=job.c.failed + failed,
                cancelled=job.c.cancelled + cancelled, chars_done=job.c.chars_done + chars_done,
            )
        )
    _finalize(conn, job_id)


# --------------------------------------------------------------------------------- dispatching


@dataclass(frozen=True, slots=True)
class ShareEntry:
    """A job in its model's fair share: ``vtime`` grows by chars / ``priority`` per batch."""

    job_id: str
    model: str | None
    model_hash: str | None
    priority: int
    vtime: float
    seq: int


def dispatchable_jobs(db: Database, *, model: str | None = None) -> list[ShareEntry]:
    """Sealed, unpaused jobs that may still have documents to hand to workers (only ``model``'s
    when given), least ``vtime`` first, then oldest."""
    with db.read() as conn:
        stmt = (
            select(job.c.id, job.c.model, job.c.model_hash, job.c.priority, job.c.vtime, job.c.seq)
            .where(job.c.sealed.is_(True), job.c.status.in_(_ACCEPTS_WORK), job.c.paused.is_(False))
            .order_by(job.c.vtime, job.c.seq)
        )
        if model is not None:
            stmt = stmt.where(job.c.model == model)
        return [ShareEntry(i, m, h, max(1, int(p or 1)), float(v or 0.0), int(q))
                for i, m, h, p, v, q in conn.execute(stmt)]


#: States of an earlier copy of a text whose outcome a twin waits for (incremental jobs).
_IN_FLIGHT = (D.PENDING, D.QUEUED, D.PROCESSING)


def next_pending(db: Database, job_id: str, *, limit: int) -> list[tuple[int, int]]:
    """Up to ``limit`` pending documents of a job as ``(id, n_chars)``, in corpus order.

    In an incremental job a document whose text an earlier document of the job holds, still
    pending or running, is not handed out: that one's entities are copied to it when it is done
    (:func:`save_outcomes`), so a text repeated within one corpus is tagged once. If the earlier
    one fails or is cancelled, the twin is handed out itself.
    """
    with db.read() as conn:
        stmt = (
            select(document.c.id, document.c.n_chars)
            .where(document.c.job_id == job_id, document.c.status == D.PENDING)
            .order_by(document.c.id)
            .limit(limit)
        )
        if conn.execute(select(job.c.incremental).where(job.c.id == job_id)).scalar():
            first = document.alias("first")
            stmt = stmt.where(~exists().where(
                first.c.job_id == job_id, first.c.text_hash == document.c.text_hash, first.c.id < document.c.id,
                first.c.status.in_(_IN_FLIGHT)))
        return [(int(i), int(n)) for i, n in conn.execute(stmt)]


def mark_queued(db: Database, doc_ids: Sequence[int], *, job_id: str | None = None,
                charge: float = 0.0) -> list[int]:
    """Move pending documents to ``queued`` and return the ids this call moved; when any moved,
    add ``charge`` to ``job_id``'s ``vtime`` in the same transaction (fair share).

    Commit before publishing: a worker must never receive an id whose row it cannot see yet.
    """
    if not doc_ids:
        return []
    with db.write() as conn:
        stmt = (
            update(document)
            .where(document.c.id.in_(list(doc_ids)), document.c.status == D.PENDING)
            .values(status=D.QUEUED, queued_at=time.time())
            .returning(document.c.id)
        )
        moved = sorted(int(i) for i in conn.execute(stmt).scalars())
        if moved and job_id is not None and charge:
            conn.execute(update(job).where(job.c.id == job_id).values(vtime=job.c.vtime + charge))
        return moved


def unqueue(db: Database, doc_ids: Sequence[int]) -> int:
    """Undo ``mark_queued`` for ids whose publish failed."""
    with db.write() as conn:
        return int(conn.execute(update(document).where(
            document.c.id.in_(list(doc_ids)), document.c.status == D.QUEUED
        ).values(status=D.PENDING)).rowcount or 0)


def requeue_stale(db: Database, *, stale_queued_after: float, now: float | None = None,
                  model: str | None = None) -> int:
    """Return lost work to ``pending``: ``queued`` rows older than the threshold and
    ``processing`` rows whose lease expired. Attempts are kept, so poison still ends.

    The caller passes a short ``stale_queued_after`` only when no message can still be waiting
    for these rows (the broker queue is empty); a late duplicate message is harmless anyway,
    since claims are fenced. ``model``: only jobs of that model (its queue's depth decided)."""
    now = time.time() if now is None else now
    with db.write() as conn:
        open_jobs = select(job.c.id).where(job.c.status.in_(_ACCEPTS_WORK))
        if model is not None:
            open_jobs = open_jobs.where(job.c.model == model)
        stmt = (
            update(document)
            .where(
                document.c.job_id.in_(open_jobs),
                or_(
                    and_(document.c.status == D.QUEUED, document.c.queued_at < now - stale_queued_after),
                    and_(document.c.status == D.PROCESSING, document.c.lease_expires_at < now),
                ),
            )
            .values(status=D.PENDING, updated_at=now)
        )
        return int(conn.execute(stmt).rowcount or 0)


@dataclass(frozen=True)
class JobRecipe:
    """How a job's documents are tagged, as the job recorded it (all None: no such job)."""

    model: str | None = None
    model_hash: str | None = None
    fold: str | None = None
    dictionary_id: int | None = None
    dictionary_hash: str | None = None
    paused: bool = False  # not part of the recipe: read in the same query, so a batch reads the job once


def job_model(db: Database, job_id: str) -> JobRecipe:
    """The model, fold and dictionary recorded on a job, and whether it is paused."""
    with db.read() as conn:
        row = conn.execute(select(job.c.model, job.c.model_hash, job.c.fold, job.c.dictionary_id,
                                  job.c.dictionary_hash, job.c.paused).where(job.c.id == job_id)).first()
        return JobRecipe(*row[:5], bool(row[5])) if row else JobRecipe()


def open_jobs(db: Database) -> list[str]:
    """Jobs not yet terminal (for the reconciler's recount)."""
    with db.read() as conn:
        return list(conn.execute(select(job.c.id).where(job.c.status.in_(_OPEN))).scalars())


# ----------------------------------------------------------------------------------- claim/save


def lease_token_for(owner: str | None) -> str:
    """A fresh lease token; with an ``owner`` (the Celery message id) its first 16 hex digits
    name the owner, so a redelivery of the same message can take its own leases back."""
    prefix = owner_prefix(owner) if owner else new_id()[:16]
    return prefix + new_id()[:16]


def owner_prefix(owner: str) -> str:
    """The 16-hex-digit lease-token prefix of an owner."""
    return hashlib.sha1(owner.encode("utf-8")).hexdigest()[:16]


def tried_before(db: Database, doc_ids: Sequence[int]) -> set[int]:
    """Ids among ``doc_ids`` that are not terminal yet but were already attempted.

    The worker runs these one at a time: an earlier attempt died (crash, kill, time limit)
    and one of them may be the cause, so no innocent neighbour should pay an attempt for it.
    """
    if not doc_ids:
        return set()
    with db.read() as conn:
        stmt = select(document.c.id).where(
            document.c.id.in_(list(doc_ids)), document.c.attempts > 0,
            document.c.status.in_(tuple(sorted(DOC_UNFINISHED))))
        return {int(i) for i in conn.execute(stmt).scalars()}


def claim(db: Database, *, job_id: str, doc_ids: Sequence[int], lease_seconds: float,
          max_attempts: int, now: float | None = None, owner: str | None = None) -> list[ClaimedDocument]:
    """Lease the given documents for one attempt; commit before any inference.

    Documents already done, failed, or leased by a live holder are skipped. A document whose
    attempt counter passes ``max_attempts`` is failed as ``poison`` instead of returned. When
    the job is cancelling, the documents are cancelled instead.

    Args:
        owner: the delivery's message id. Leases held under the same owner are taken over
            even if not expired: the same message delivered again means its previous run died
            (Celery requeues a batch whose pool child was killed about a second later).
    """
    now = time.time() if now is None else now
    token = lease_token_for(owner)
    ids = list(doc_ids)
    takeable = [document.c.status.in_(_CLAIMABLE),
                and_(document.c.status == D.PROCESSING, document.c.lease_expires_at < now)]
    if owner:
        takeable.append(and_(document.c.status == D.PROCESSING,
                             document.c.lease_token.like(owner_prefix(owner) + "%")))
    claimable = and_(document.c.id.in_(ids), document.c.job_id == job_id, or_(*takeable))
    with db.write() as conn:
        status = conn.execute(select(job.c.status).where(job.c.id == job_id)).scalar()
        if status is None:
            return []
        if status not in JOB_ACCEPTS_WORK:
            if status == J.CANCELLING:
                n = conn.execute(update(document).where(claimable).values(
                    status=D.CANCELLED, reason=Reason.CANCELLED, lease_expires_at=None, updated_at=now)).rowcount
                _bump(conn, job_id, cancelled=int(n or 0))
            return []
        conn.execute(
            update(document)
            .where(claimable)
            .values(status=D.PROCESSING, attempts=document.c.attempts + 1, lease_token=token,
                    lease_expires_at=now + lease_seconds, updated_at=now)
        )
        poisoned = conn.execute(
            update(document)
            .where(document.c.id.in_(ids), document.c.lease_token == token,
                   document.c.attempts > max_attempts)
            # This claim is not a try: ``attempts`` keeps counting the tries that ran.
            .values(status=D.FAILED, reason=Reason.POISON, lease_expires_at=None,
                    attempts=document.c.attempts - 1,
                    error=f"gave up after {max_attempts} attempts (crash, kill or time limit)")
        ).rowcount
        conn.execute(
            update(job).where(job.c.id == job_id, job.c.status == J.SUBMITTED)
            .values(status=J.RUNNING, started_at=now)
        )
        _bump(conn, job_id, failed=int(poisoned or 0))
        rows = conn.execute(
            select(document.c.id, document.c.ext_id, document.c.text, document.c.n_chars,
                   document.c.attempts)
            .where(document.c.id.in_(ids), document.c.lease_token == token,
                   document.c.status == D.PROCESSING)
            .order_by(document.c.id)
        )
        return [ClaimedDocument(int(r.id), r.ext_id, r.text, int(r.n_chars), int(r.attempts), token)
                for r in rows]


def renew(db: Database, *, lease_token: str, lease_seconds: float, now: float | None = None) -> int:
    """Extend the lease of every document still ``processing`` under ``lease_token`` to
    ``now + lease_seconds``; returns how many. Fenced: a document another claimant took over (or
    that is finished, released or requeued) has another token or status and is left alone, so a
    renewal never revives a lease that was lost."""
    now = time.time() if now is None else now
    with db.write() as conn:
        return int(conn.execute(update(document).where(
            document.c.lease_token == lease_token, document.c.status == D.PROCESSING,
        ).values(lease_expires_at=now + lease_seconds)).rowcount or 0)


def release(db: Database, *, doc_ids: Sequence[int], lease_token: str | None, refund: bool = False) -> int:
    """Give unfinished work of an interrupted batch back to ``pending``.

    Documents of ``doc_ids`` still ``processing`` under ``lease_token``, and those still
    ``queued`` (their message is about to be acked without running them), become pending so
    the dispatcher sends them again at once instead of after the stale thresholds.

    Args:
        refund: give the claim's attempt back (a graceful stop: the document never ran, so it
            must not move towards ``poison``). Without it attempts are kept (a soft time limit).
    """
    if not doc_ids:
        return 0
    mine = document.c.status == D.QUEUED
    if lease_token:
        mine = or_(mine, and_(document.c.status == D.PROCESSING, document.c.lease_token == lease_token))
    values: dict[str, Any] = {"status": D.PENDING, "lease_expires_at": None, "updated_at": time.time()}
    if refund:
        # Only claimed documents paid an attempt; queued ones did not.
        values["attempts"] = case((document.c.status == D.PROCESSING, document.c.attempts - 1),
                                  else_=document.c.attempts)
    with db.write() as conn:
        return int(conn.execute(update(document).where(document.c.id.in_(list(doc_ids)), mine)
                                .values(**values)).rowcount or 0)


def save_outcomes(db: Database, *, job_id: str, lease_token: str, outcomes: Sequence[Outcome],
                  recipe: str | None = None) -> dict[str, int]:
    """Write entities, document status and job counters of a batch in ONE transaction; a done
    document records the ``recipe`` it was tagged with (``storage.core.recipe``: what reuse
    matches on).

    Fenced: a document is written only while it is still ``processing`` under ``lease_token``;
    otherwise (a duplicate run took it over, or it was cancelled) its outcome is dropped. An
    outcome marked ``cancelled`` (its job was cancelled while it ran) ends the document cancelled.

    Returns:
        ``{"done": n, "failed": n, "fenced": n, "cancelled": n}`` for this call.
    """
    now = time.time()
    done = failed = fenced = chars = cancelled = 0
    with db.write() as conn:
        for out in outcomes:
            mine = and_(document.c.id == out.document_id, document.c.lease_token == lease_token,
                        document.c.status == D.PROCESSING)
            if out.cancelled:
                n = conn.execute(update(document).where(mine).values(
                    status=D.CANCELLED, reason=Reason.CANCELLED, lease_expires_at=None, updated_at=now)).rowcount
                cancelled += n
                fenced += 1 - n
                continue
            if out.error is not None:
                n = conn.execute(update(document).where(mine).values(
                    status=D.FAILED, reason=out.reason or Reason.ERROR, error=out.error[:2000],
                    lease_expires_at=None, updated_at=now)).rowcount
                failed += n
                fenced += 1 - n
                continue
            n = conn.execute(update(document).where(mine).values(
                status=D.DONE, reason=out.reason, error=None, lease_expires_at=None,
                updated_at=now, recipe=recipe)).rowcount
            if not n:
                fenced += 1
                continue
            done += 1
            chars += out.n_chars
            conn.execute(delete(entity).where(entity.c.document_id == out.document_id))
            insert_ignore(conn, entity, [
                {"job_id": job_id, "document_id": out.document_id, "start": e.start, "end": e.end,
                 "label": e.label, "text": e.text, "score": float(e.score), "source": e.source}
                for e in out.entities
            ], ["document_id", "start", "end", "label"])
        twins = twin_chars = 0
        finished = [out.document_id for out in outcomes if out.error is None and not out.cancelled]
        if finished and conn.execute(select(job.c.incremental).where(job.c.id == job_id)).scalar():
            twins, twin_chars = _finish_twins(conn, job_id, finished, recipe, now)
        _bump(conn, job_id, done=done + twins, failed=failed, cancelled=cancelled, chars_done=chars + twin_chars)
    return {"done": done, "failed": failed, "fenced": fenced, "cancelled": cancelled}


def _finish_twins(conn: Connection, job_id: str, finished: Sequence[int], recipe: str | None,
                  now: float) -> tuple[int, int]:
    """Copy the entities of ``finished`` (documents this transaction made done) to the pending
    documents of the same incremental job holding the same text, which end ``done`` / ``reused``
    (a text repeated within one corpus is tagged once). Returns ``(documents, chars)``."""
    source = document.alias("source")
    # One donor per text (the lowest id), so each twin joins exactly one donor's entities.
    donors = sorted(int(r[0]) for r in conn.execute(
        select(func.min(source.c.id)).where(source.c.id.in_(list(finished)), source.c.status == D.DONE,
                                            source.c.text_hash.is_not(None))
        .group_by(source.c.text_hash)))
    if not donors:
        return 0, 0
    pairs = [(int(r.id), int(r.n_chars)) for r in conn.execute(
        select(document.c.id, document.c.n_chars)
        .join(source, and_(source.c.text_hash == document.c.text_hash, source.c.id.in_(donors)))
        .where(document.c.job_id == job_id, document.c.status == D.PENDING))]
    if not pairs:
        return 0, 0
    return _fill_reused(conn, job_id, [p[0] for p in pairs], donors, recipe, now), sum(p[1] for p in pairs)


def _fill_reused(conn: Connection, job_id: str, ids: Sequence[int], donors: Sequence[int], recipe: str | None,
                 now: float) -> int:
    """Make the pending documents ``ids`` of ``job_id`` ``done`` / ``reused`` with a copy of the
    entities of the one donor among ``donors`` holding the same text (the donors hold distinct
    text hashes), in one INSERT ... SELECT, and count them in ``job.reused``; returns how many.

    Raises:
        InvalidTransition: one of ``ids`` was no longer pending.
    """
    done = int(conn.execute(update(document).where(document.c.id.in_(list(ids)), document.c.status == D.PENDING)
                            .values(status=D.DONE, reason=Reason.REUSED, recipe=recipe, updated_at=now)).rowcount or 0)
    if done != len(ids):
        raise InvalidTransition(f"job {job_id}: {len(ids) - done} documents changed state while being reused")
    new, donor = document.alias("new"), document.alias("donor")
    conn.execute(insert(entity).from_select(
        ["job_id", "document_id", "start", "end", "label", "text", "score", "source"],
        select(literal(job_id), new.c.id, entity.c.start, entity.c.end, entity.c.label, entity.c.text,
               entity.c.score, entity.c.source)
        .select_from(entity.join(donor, donor.c.id == entity.c.document_id)
                     .join(new, new.c.text_hash == donor.c.text_hash))
        .where(new.c.id.in_(list(ids)), donor.c.id.in_(list(donors)))
        .order_by(new.c.id, entity.c.id)))
    conn.execute(update(job).where(job.c.id == job_id).values(reused=job.c.reused + done))
    return done



# ---------------------------------------------------------------------------------- reuse


def find_donors(conn: Connection, job_id: str, recipe: str, hashes: Sequence[str]) -> dict[str, int]:
    """For each text hash, the lowest ``done`` document of another job tagged with ``recipe``
    (the one reuse copies), where there is one: the incremental look-up, one index range each."""
    return dict(conn.execute(
        select(document.c.text_hash, func.min(document.c.id))
        .where(document.c.recipe == recipe, document.c.text_hash.in_(hashes),
               document.c.status == D.DONE, document.c.job_id != job_id)
        .group_by(document.c.text_hash)).all())


def reuse_done(db: Database, job_id: str, recipe: str, *, page: int = 500) -> int:
    """Finish every pending document of ``job_id`` that an earlier job already tagged with the same
    text and ``recipe``: it becomes ``done`` / ``reused`` with a copy of that document's entities,
    in the transactions that count it (one per page). Returns how many were reused.

    Only ``done`` documents of other jobs are donors (failed ones never are); the donor is the
    lowest row id with that text hash and recipe, so the choice is deterministic.
    """
    reused = 0
    last = 0
    while True:
        with db.write() as conn:
            docs = list(conn.execute(
                select(document.c.id, document.c.text_hash, document.c.n_chars)
                .where(document.c.job_id == job_id, document.c.status == D.PENDING, document.c.id > last,
                       document.c.text_hash.is_not(None))
                .order_by(document.c.id).limit(page)))
            if not docs:
                return reused
            last = docs[-1].id
            donors = find_donors(conn, job_id, recipe, sorted({d.text_hash for d in docs}))
            pairs = [(d.id, donors[d.text_hash], d.n_chars) for d in docs if d.text_hash in donors]
            done = chars = 0
            if pairs:
                # The job is not sealed yet, so no worker holds these documents: every one updates.
                done = _fill_reused(conn, job_id, [p[0] for p in pairs], sorted({p[1] for p in pairs}), recipe,
                                    time.time())
                chars = sum(p[2] for p in pairs)
            _bump(conn, job_id, done=done, chars_done=chars)
            reused += done


# ---------------------------------------------------------------------------------- cancel/retry


def cancel_job(db: Database, job_id: str) -> str:
    """Request cancellation: documents not yet claimed are cancelled now; documents being
    processed finish; the job becomes ``cancelled`` when the last one is terminal.

    Returns:
        The job state after the call.
    """
    now = time.time()
    with db.write() as conn:
        status = conn.execute(select(job.c.status).where(job.c.id == job_id)).scalar()
        if status is None:
            raise NotFound(f"no job {job_id}")
        if status not in JOB_OPEN:
            raise InvalidTransition(f"job {job_id} is already {status}")
        conn.execute(update(job).where(job.c.id == job_id, job.c.status.in_(_OPEN))
                     .values(status=J.CANCELLING))
        n = conn.execute(update(document).where(
            document.c.job_id == job_id, document.c.status.in_(_CLAIMABLE)
        ).values(status=D.CANCELLED, reason=Reason.CANCELLED, updated_at=now)).rowcount
        _bump(conn, job_id, cancelled=int(n or 0))
        return str(conn.execute(select(job.c.status).where(job.c.id == job_id)).scalar())


def set_paused(db: Database, *, paused: bool, job_id: str | None = None, model: str | None = None) -> list[str]:
    """Pause (or resume) one open job, or every open job of ``model``; returns the job ids changed.

    Raises:
        NotFound: no such job; InvalidTransition: the job is already finished.
    """
    with db.write() as conn:
        if job_id is not None:
            status = conn.execute(select(job.c.status).where(job.c.id == job_id)).scalar()
            if status is None:
                raise NotFound(f"no job {job_id}")
            if status not in _OPEN:
                raise InvalidTransition(f"cannot {'pause' if paused else 'resume'} a job that is {status}")
            where = job.c.id == job_id
        else:
            where = and_(job.c.model == model, job.c.status.in_(_OPEN))
        ids = list(conn.execute(select(job.c.id).where(where, job.c.paused.is_(not paused))).scalars())
        if ids:
            conn.execute(update(job).where(job.c.id.in_(ids)).values(paused=paused))
        return ids


def retry_failed(db: Database, job_id: str, *, reason: str | None = None) -> int:
    """Return a finished job's failed documents (except bad input; only those failed with
    ``reason`` when given) to ``pending`` with a fresh attempt budget, and reopen the job. Returns
    the number of documents re-queued."""
    with db.write() as conn:
        status = conn.execute(select(job.c.status).where(job.c.id == job_id)).scalar()
        if status is None:
            raise NotFound(f"no job {job_id}")
        if status not in JOB_RETRYABLE:
            raise InvalidTransition(f"cannot retry a job that is {status}")
        which = [document.c.job_id == job_id, document.c.status == D.FAILED,
                 or_(document.c.reason.is_(None), document.c.reason.not_in([r.value for r in INPUT_REASONS]))]
        if reason is not None:
            which.append(document.c.reason == reason)
        n = int(conn.execute(update(document).where(*which).values(status=D.PENDING, attempts=0, reason=None, error=None, lease_token=None,
                 updated_at=time.time())).rowcount or 0)
        if n:
            conn.execute(update(job).where(job.c.id == job_id)
                         .values(status=J.RUNNING, failed=job.c.failed - n, finished_at=None))
            _join_fair_share(conn, job_id)
            # The earlier completion event is out of date: its receiver gets the new one when the
            # job finishes again, never the old state after the new.
            conn.execute(update(notification).where(notification.c.job_id == job_id,
                                                    notification.c.state == "pending")
                         .values(state="given_up", last_error="superseded: the job was retried"))
        return n

