"""Read-only queries: job rows, progress, failures, entities (keyset pagination), export, and the
aggregates the page and ``/metrics`` show (throughput buckets, counts by state)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Integer, cast, func, select

from storage.sql.db import Database
from storage.core.domain import JOB_OPEN, DocumentStatus, JobStatus
from storage.core.domain import DocumentStatus as D
from storage.core.errors import NotFound
from storage.sql.schema import document, entity, job
from storage.core.views import DocumentView, EntityView, ExportRecord, SpanView, TopEntity


def get_job(db: Database, job_id: str) -> dict[str, Any]:
    """The job row as a dict plus ``processing`` (documents under a lease now).

    Raises:
        NotFound: unknown ``job_id``.
    """
    with db.read() as conn:
        row = conn.execute(select(job).where(job.c.id == job_id)).mappings().first()
        if row is None:
            raise NotFound(f"no job {job_id}")
        processing = conn.execute(
            select(func.count()).where(document.c.job_id == job_id, document.c.status == D.PROCESSING)
        ).scalar_one()
        return {**row, "processing": int(processing)}


def job_state(db: Database, job_id: str) -> str | None:
    """The job's state (None: no such job); one indexed read, cheap enough to poll."""
    with db.read() as conn:
        return conn.execute(select(job.c.status).where(job.c.id == job_id)).scalar()


def count_by_status(db: Database, job_id: str) -> dict[str, int]:
    """Documents of a job per status (every status present, zeros included)."""
    with db.read() as conn:
        stmt = (select(document.c.status, func.count()).where(document.c.job_id == job_id)
                .group_by(document.c.status))
        counts = {s.value: 0 for s in D}
        counts.update({s: int(n) for s, n in conn.execute(stmt)})
        return counts


def failures(db: Database, job_id: str, *, limit: int = 10) -> list[dict[str, Any]]:
    """The first failed documents of a job (corpus order)."""
    with db.read() as conn:
        stmt = (select(document.c.ext_id, document.c.line, document.c.reason, document.c.error)
                .where(document.c.job_id == job_id, document.c.status == D.FAILED)
                .order_by(document.c.id).limit(limit))
        return [{"doc_id": r.ext_id, "line": r.line, "reason": r.reason, "error": r.error}
                for r in conn.execute(stmt)]


def failure_page(db: Database, job_id: str, *, reason: str | None = None, cursor: str | None = None,
                 limit: int = 100) -> dict[str, Any]:
    """Failed documents of a job in corpus order, a page at a time (only those failed with
    ``reason`` when given), with the count per reason: ``{by_reason, items, next_cursor}``."""
    with db.read() as conn:
        counts = {str(r[0] or "error"): int(r[1]) for r in conn.execute(
            select(document.c.reason, func.count()).where(document.c.job_id == job_id, document.c.status == D.FAILED)
            .group_by(document.c.reason).order_by(func.count().desc(), document.c.reason))}
        stmt = (select(document.c.id, document.c.ext_id, document.c.line, document.c.reason, document.c.error,
                       document.c.attempts)
                .where(document.c.job_id == job_id, document.c.status == D.FAILED)
                .order_by(document.c.id).limit(limit + 1))
        if reason is not None:
            stmt = stmt.where(document.c.reason == reason)
        if cursor is not None:
            stmt = stmt.where(document.c.id > int(cursor))
        rows = list(conn.execute(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"by_reason": counts,
            "items": [{"doc_id": r.ext_id, "line": r.line, "reason": r.reason, "error": r.error,
                       "attempts": r.attempts} for r in rows],
            "next_cursor": str(rows[-1].id) if more and rows else None}


def list_jobs(db: Database, *, state: str | None = None, limit: int = 50, cursor: int | None = None,
              owner: str | None = None) -> tuple[list[dict[str, Any]], int | None]:
    """Jobs newest first (only ``owner``'s when given). Returns ``(rows, next_cursor)``; pass the
    cursor back for the next page."""
    stmt = select(job).order_by(job.c.seq.desc()).limit(limit + 1)
    if owner is not None:
        stmt = stmt.where(job.c.owner == owner)
    if state:
        stmt = stmt.where(job.c.status == state)
    if cursor is not None:
        stmt = stmt.where(job.c.seq < cursor)
    with db.read() as conn:
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1]["seq"] if more and rows else None)


def find_entities(db: Database, job_id: str, *, label: str | None = None, text: str | None = None,
                  doc: str | None = None, cursor: int | None = None, min_score: float | None = None,
                  limit: int = 100) -> tuple[list[EntityView], int | None]:
    """Entities of a job filtered by exact label / entity text / document id / a least score, in
    insertion order.

    Returns:
        ``(items, next_cursor)`` where items have ``doc_id, start, end, label, text, score, source``.
    """
    stmt = (
        select(entity.c.id, document.c.ext_id, entity.c.start, entity.c.end, entity.c.label,
               entity.c.text, entity.c.score, entity.c.source)
        .join(document, document.c.id == entity.c.document_id)
        .where(entity.c.job_id == job_id)
        .order_by(entity.c.id)
        .limit(limit + 1)
    )
    if label:
        stmt = stmt.where(entity.c.label == label)
    if text:
        stmt = stmt.where(entity.c.text == text)
    if doc is not None:
        stmt = stmt.where(document.c.job_id == job_id, document.c.ext_id == doc)
    if cursor is not None:
        stmt = stmt.where(entity.c.id > cursor)
    if min_score is not None:
        stmt = stmt.where(entity.c.score >= min_score)
    with db.read() as conn:
        rows = list(conn.execute(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    items: list[EntityView] = [{"doc_id": r.ext_id, "start": r.start, "end": r.end, "label": r.label,
                                "text": r.text, "score": r.score, "source": r.source} for r in rows]
    return items, (int(rows[-1].id) if more and rows else None)


def top_entities(db: Database, job_id: str, *, label: str | None = None,
                 limit: int = 20) -> list[TopEntity]:
    """Most frequent entity strings, ``limit`` per label: ``[{label, text, count}]``."""
    with db.read() as conn:
        labels = [label] if label else list(conn.execute(
            select(entity.c.label).where(entity.c.job_id == job_id).distinct().order_by(entity.c.label)
        ).scalars())
        out: list[TopEntity] = []
        for lab in labels:
            n = func.count().label("n")
            stmt = (select(entity.c.text, n)
                    .where(entity.c.job_id == job_id, entity.c.label == lab)
                    .group_by(entity.c.text).order_by(n.desc(), entity.c.text).limit(limit))
            out.extend({"label": lab, "text": t, "count": int(c)} for t, c in conn.execute(stmt))
        return out


def entities_of(conn: Any, doc_ids: list[int], *, min_score: float | None = None) -> dict[int, list[SpanView]]:
    """Entities of the given documents (by row id), each list in span order; those scored under
    ``min_score`` left out."""
    found: dict[int, list[SpanView]] = {i: [] for i in doc_ids}
    stmt = (select(entity.c.document_id, entity.c.start, entity.c.end, entity.c.label,
                   entity.c.text, entity.c.score, entity.c.source)
            .where(entity.c.document_id.in_(doc_ids)).order_by(entity.c.document_id, entity.c.start))
    if min_score is not None:
        stmt = stmt.where(entity.c.score >= min_score)
    for r in conn.execute(stmt):
        found[r.document_id].append({"start": r.start, "end": r.end, "label": r.label,
                                     "text": r.text, "score": r.score, "source": r.source})
    return found


def get_document(db: Database, job_id: str, ext_id: str) -> DocumentView:
    """One document with its entities.

    Raises:
        NotFound: unknown job or document id.
    """
    with db.read() as conn:
        row = conn.execute(select(document).where(document.c.job_id == job_id,
                                                  document.c.ext_id == ext_id)).mappings().first()
        if row is None:
            raise NotFound(f"no document {ext_id!r} in job {job_id}")
        return {"doc_id": row["ext_id"], "text": row["text"], "state": row["status"],
                "reason": row["reason"], "error": row["error"], "attempts": row["attempts"],
                "line": row["line"], "entities": entities_of(conn, [row["id"]])[row["id"]]}


def iter_export(db: Database, job_id: str, *, page: int = 500, min_score: float | None = None,
                text: bool = False, rows: Sequence[int] | None = None) -> Iterator[ExportRecord]:
    """Stream one record per document (corpus order): doc_id, state, length, entities (those
    scored at least ``min_score``)[, reason][, text when ``text``], and the job's model, its content
    hash, the character fold and the dictionary (provenance). ``rows``: only these documents (row
    ids), in this order."""
    with db.read() as conn:
        model, model_hash, fold, dictionary, dictionary_hash = conn.execute(
            select(job.c.model, job.c.model_hash, job.c.fold, job.c.dictionary, job.c.dictionary_hash)
            .where(job.c.id == job_id)).one()
    cols = [document.c.id, document.c.ext_id, document.c.status, document.c.reason, document.c.n_chars]
    if text:
        cols.append(document.c.text)
    last, at = 0, 0
    while True:
        with db.read() as conn:
            if rows is None:
                docs = list(conn.execute(select(*cols).where(document.c.job_id == job_id, document.c.id > last)
                                         .order_by(document.c.id).limit(page)))
            else:
                wanted = list(rows[at:at + page])
                found = {d.id: d for d in conn.execute(select(*cols).where(
                    document.c.job_id == job_id, document.c.id.in_(wanted)))}
                docs = [found[i] for i in wanted if i in found]
                at += page
                if not wanted:
                    return
            if not docs:
                if rows is None:
                    return
                continue
            ents = entities_of(conn, [d.id for d in docs], min_score=min_score)
        for d in docs:
            rec: ExportRecord = {"doc_id": d.ext_id, "state": d.status, "length": d.n_chars, "entities": ents[d.id],
                                 "model": model, "model_hash": model_hash, "fold": fold,
                                 "dictionary": dictionary, "dictionary_hash": dictionary_hash}
            if d.reason:
                rec["reason"] = d.reason
            if text:
                rec["text"] = d.text
            yield rec
        last = docs[-1].id


def count_failed_at_ingest(db: Database, job_id: str) -> int:
    """Documents rejected at ingest (failed without ever being attempted)."""
    with db.read() as conn:
        return int(conn.execute(select(func.count()).where(
            document.c.job_id == job_id, document.c.status == D.FAILED, document.c.attempts == 0
        )).scalar_one())


def job_owner(db: Database, job_id: str) -> str | None:
    """The key name that submitted the job (None: the CLI or an open API).

    Raises:
        NotFound: unknown job.
    """
    with db.read() as conn:
        row = conn.execute(select(job.c.owner).where(job.c.id == job_id)).first()
    if row is None:
        raise NotFound(f"no job {job_id}")
    return str(row.owner) if row.owner is not None else None


def unfinished(db: Database, owner: str) -> tuple[int, int]:
    """Documents and characters of ``owner``'s open jobs not yet done, failed or cancelled (the
    per-key limits)."""
    with db.read() as conn:
        docs, chars = conn.execute(
            select(func.coalesce(func.sum(job.c.total - job.c.done - job.c.failed - job.c.cancelled), 0),
                   func.coalesce(func.sum(job.c.chars_total - job.c.chars_done), 0))
            .where(job.c.owner == owner, job.c.status.in_(tuple(sorted(JOB_OPEN))))).one()
    return int(docs or 0), int(chars or 0)


def recorded_model_hash(db: Database, model: str) -> str | None:
    """The content hash the newest job naming ``model`` recorded (None: no job named it)."""
    with db.read() as conn:
        return conn.execute(select(job.c.model_hash).where(job.c.model == model, job.c.model_hash.is_not(None))
                            .order_by(job.c.seq.desc()).limit(1)).scalar()


def throughput(db: Database, job_id: str, *, buckets: int = 40,
               now: float | None = None) -> dict[str, Any]:
    """Documents and characters completed per second, in equal time buckets over the job's run.

    A document's completion time is its last status change (``updated_at``) into ``done`` or
    ``failed``; the aggregation happens in SQL, so the cost does not grow with the answer.

    Returns:
        ``{"bucket_seconds": w, "points": [{"t": epoch_mid, "seconds": span, "docs": per_s,
        "chars": per_s}]}`` (every span is ``w`` but the last, which ends now or at the finish),
        with empty buckets as zeros; no points before the job started.

    Raises:
        NotFound: unknown ``job_id``.
    """
    row = get_job(db, job_id)
    start = row["started_at"] or row["submitted_at"]
    end = row["finished_at"] or (now if now is not None else time.time())
    if not start or end <= start:
        return {"bucket_seconds": 0, "points": []}
    # Whole seconds for long runs, half seconds for short ones: a worker commits a whole batch
    # at one instant, so much narrower buckets would only draw batch boundaries as spikes.
    raw = (end - start) / buckets
    width = math.ceil(raw) if raw >= 1 else 0.5
    n = max(1, math.ceil((end - start) / width - 1e-9))
    # CAST truncates on SQLite and rounds on PostgreSQL; either way each row lands in a
    # neighbouring bucket, and the index is clamped below.
    index = cast((document.c.updated_at - start) / width, Integer).label("i")
    stmt = (select(index, func.count(), func.coalesce(func.sum(document.c.n_chars), 0))
            .where(document.c.job_id == job_id, document.c.status.in_([D.DONE, D.FAILED]),
                   document.c.updated_at >= start)
            .group_by(index))
    docs = [0] * n
    chars = [0] * n
    with db.read() as conn:
        for i, count, n_chars in conn.execute(stmt):
            k = min(max(int(i), 0), n - 1)
            docs[k] += int(count)
            chars[k] += int(n_chars)
    # The last bucket may be partial (a running job): divide by the time it really covers.
    spans = [width] * (n - 1) + [max(end - (start + (n - 1) * width), 1e-3)]
    points = [{"t": start + k * width + spans[k] / 2, "seconds": spans[k], "docs": docs[k] / spans[k],
               "chars": chars[k] / spans[k]} for k in range(n)]
    return {"bucket_seconds": width, "points": points}


def counts_by_state(db: Database) -> tuple[dict[str, int], dict[str, int]]:
    """``(jobs by state, documents by status)`` over the whole database, every state present
    (zero when none)."""
    with db.read() as conn:
        jobs = {s.value: 0 for s in JobStatus}
        jobs.update({s: int(n) for s, n in conn.execute(select(job.c.status, func.count()).group_by(job.c.status))})
        docs = {s.value: 0 for s in DocumentStatus}
        docs.update({s: int(n) for s, n in conn.execute(
            select(document.c.status, func.count()).group_by(document.c.status))})
    return jobs, docs


def completions_since(db: Database, since: float) -> tuple[int, int]:
    """``(documents, characters)`` finished (done or failed) at or after ``since`` (epoch s)."""
    with db.read() as conn:
        n, chars = conn.execute(
            select(func.count(), func.coalesce(func.sum(document.c.n_chars), 0))
            .where(document.c.status.in_([DocumentStatus.DONE, DocumentStatus.FAILED]),
                   document.c.updated_at >= since)).one()
    return int(n), int(chars)
