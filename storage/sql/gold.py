"""Corrections stored as gold: a job of their own, one per imported annotation export.

A corrections job (``job.gold_of`` = the job whose documents were corrected) holds copies of the
corrected documents (same ids, lines and texts) and the annotators' entities (``source`` =
``gold``), and is ``done`` from the start: no worker ever sees it. Every reader of jobs therefore
reads corrections too (entities, export, the SQL views), ``shiti diff`` compares a job with them
over the corrected documents, and ``shiti model evaluate --job`` scores a model on them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select

from storage.core.domain import SOURCE_GOLD
from storage.core.domain import DocumentStatus as D
from storage.core.domain import JobStatus as J
from storage.core.errors import NotFound
from storage.core.recipe import text_hash
from storage.sql.db import Database
from storage.sql.repo import new_id
from storage.sql.schema import document, entity, job


@dataclass(frozen=True)
class GoldDocument:
    """One corrected document: the stored document's id, line and text, and its entities
    ``(start, end, label)`` in code points."""

    ext_id: str
    line: int | None
    text: str
    spans: tuple[tuple[int, int, str], ...]


def store_gold(db: Database, *, of_job: str, docs: Sequence[GoldDocument], name: str | None,
               owner: str | None, source: dict[str, Any]) -> str:
    """Store ``docs`` as a new corrections job of ``of_job`` in one transaction (all or nothing);
    returns its id. ``source`` (the tool, the file's hash, counts) is kept as JSON."""
    now = time.time()
    job_id = new_id()
    with db.write() as conn:
        origin = conn.execute(select(job.c.model, job.c.model_hash, job.c.fold).where(job.c.id == of_job)).first()
        if origin is None:
            raise NotFound(f"no job {of_job}")
        chars = sum(len(d.text) for d in docs)
        conn.execute(insert(job).values(
            id=job_id, name=name, owner=owner, status=J.SUCCEEDED, sealed=True, total=len(docs), done=len(docs),
            failed=0, cancelled=0, chars_total=chars, chars_done=chars, submitted_at=now, started_at=now,
            finished_at=now, ingest_at=now, model=origin.model, model_hash=origin.model_hash, fold=origin.fold,
            priority=1, vtime=0.0, incremental=False, reused=0, paused=False, gold_of=of_job,
            gold_source=json.dumps(source, ensure_ascii=False, sort_keys=True)))
        for start in range(0, len(docs), 500):
            page = docs[start:start + 500]
            conn.execute(insert(document), [
                {"job_id": job_id, "ext_id": d.ext_id, "line": d.line, "text": d.text, "n_chars": len(d.text),
                 "status": D.DONE, "attempts": 0, "updated_at": now, "text_hash": text_hash(d.text)} for d in page])
            ids = dict(conn.execute(select(document.c.ext_id, document.c.id).where(
                document.c.job_id == job_id, document.c.ext_id.in_([d.ext_id for d in page]))).all())
            rows = [{"job_id": job_id, "document_id": ids[d.ext_id], "start": s, "end": e, "label": label,
                     "text": d.text[s:e], "score": 1.0, "source": SOURCE_GOLD}
                    for d in page for s, e, label in d.spans]
            if rows:
                conn.execute(insert(entity), rows)
    return job_id


def gold_jobs(db: Database, of_job: str) -> list[dict[str, Any]]:
    """The corrections jobs of ``of_job``, oldest first: ``{job_id, documents, entities, source,
    submitted_at}``."""
    with db.read() as conn:
        rows = conn.execute(select(job.c.id, job.c.total, job.c.gold_source, job.c.submitted_at)
                            .where(job.c.gold_of == of_job).order_by(job.c.seq)).all()
    return [{"job_id": r.id, "documents": r.total, "source": json.loads(r.gold_source or "{}"),
             "submitted_at": r.submitted_at} for r in rows]


def resolve_gold(db: Database, job_id: str) -> str:
    """``job_id`` itself when it is a corrections job, else its newest corrections job.

    Raises:
        NotFound: no such job, or it has no corrections.
    """
    with db.read() as conn:
        row = conn.execute(select(job.c.gold_of).where(job.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"no job {job_id}")
        if row.gold_of is not None:
            return job_id
        newest = conn.execute(select(job.c.id).where(job.c.gold_of == job_id).order_by(job.c.seq.desc())
                              .limit(1)).scalar()
    if newest is None:
        raise NotFound(f"job {job_id} has no corrections (shiti data import FILE --job {job_id})")
    return str(newest)


def corrected_ids(db: Database, of_job: str) -> set[str]:
    """Document ids of ``of_job`` that any of its corrections jobs holds."""
    with db.read() as conn:
        gold = select(job.c.id).where(job.c.gold_of == of_job)
        return {r[0] for r in conn.execute(select(document.c.ext_id).where(document.c.job_id.in_(gold)))}


def iter_gold(db: Database, gold_job: str, *, page: int = 500) -> Iterator[GoldDocument]:
    """A corrections job's documents with their entities, in stored order."""
    last = 0
    while True:
        with db.read() as conn:
            docs = conn.execute(select(document.c.id, document.c.ext_id, document.c.line, document.c.text)
                                .where(document.c.job_id == gold_job, document.c.id > last)
                                .order_by(document.c.id).limit(page)).all()
            if not docs:
                return
            spans: dict[int, list[tuple[int, int, str]]] = {d.id: [] for d in docs}
            for r in conn.execute(select(entity.c.document_id, entity.c.start, entity.c.end, entity.c.label)
                                  .where(entity.c.document_id.in_(list(spans))).order_by(entity.c.start)):
                spans[r.document_id].append((r.start, r.end, r.label))
        for d in docs:
            yield GoldDocument(d.ext_id, d.line, d.text, tuple(spans[d.id]))
        last = docs[-1].id


def stored_by_id(db: Database, job_id: str, ext_ids: Sequence[str]) -> dict[str, tuple[int | None, str]]:
    """``{doc_id: (line, text)}`` of those of ``ext_ids`` that ``job_id`` holds."""
    found: dict[str, tuple[int | None, str]] = {}
    wanted = sorted(set(ext_ids))
    with db.read() as conn:
        for start in range(0, len(wanted), 500):
            for r in conn.execute(select(document.c.ext_id, document.c.line, document.c.text).where(
                    document.c.job_id == job_id, document.c.ext_id.in_(wanted[start:start + 500]))):
                found[r.ext_id] = (r.line, r.text)
    return found


def stored_by_text(db: Database, job_id: str, texts: Sequence[str]) -> dict[str, list[tuple[str, int | None]]]:
    """``{text: [(doc_id, line), ...]}``: the documents of ``job_id`` holding each of ``texts``
    (for tools whose export lost shiti's document id)."""
    by_hash = {text_hash(t): t for t in texts}
    found: dict[str, list[tuple[str, int | None]]] = {}
    hashes = sorted(by_hash)
    with db.read() as conn:
        for start in range(0, len(hashes), 500):
            for r in conn.execute(select(document.c.ext_id, document.c.line, document.c.text_hash, document.c.text)
                                  .where(document.c.job_id == job_id,
                                         document.c.text_hash.in_(hashes[start:start + 500]))
                                  .order_by(document.c.id)):
                if r.text == by_hash[r.text_hash]:
                    found.setdefault(r.text, []).append((r.ext_id, r.line))
    return found
