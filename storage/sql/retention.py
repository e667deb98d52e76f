"""Retention: a finished job's documents, entities, corpus view, notifications and row deleted in bounded
batches, each its own short transaction, so workers writing other jobs never wait long on a lock
and an overnight deployment does not grow for ever (``shiti purge``)."""

from __future__ import annotations

from sqlalchemy import delete, select

from storage.core.domain import JOB_TERMINAL
from storage.core.errors import InvalidTransition, NotFound
from storage.sql import groups
from storage.sql.db import Database
from storage.sql.queries import job_state
from storage.sql.schema import document, entity, job, notification

#: Documents (with their entities) deleted per transaction.
PURGE_BATCH = 2000


def purge_job(db: Database, job_id: str, *, batch: int = PURGE_BATCH) -> dict[str, int | str]:
    """Delete a finished job and everything stored for it, ``batch`` documents per transaction;
    returns ``{job_id, documents, entities}`` deleted. Corrections of it (their own jobs) stay.
    Interrupted, it is safe to run again: the job row goes last.

    Raises:
        NotFound: no such job. InvalidTransition: it is not finished (cancel it first).
    """
    state = job_state(db, job_id)
    if state is None:
        raise NotFound(f"no job {job_id}")
    if state not in JOB_TERMINAL:
        raise InvalidTransition(f"job {job_id} is {state}: only a finished job is purged (`shiti cancel` first)")
    docs = ents = 0
    while True:
        with db.write() as conn:
            ids = [r[0] for r in conn.execute(select(document.c.id).where(document.c.job_id == job_id)
                                              .order_by(document.c.id).limit(batch))]
            if not ids:
                break
            ents += int(conn.execute(delete(entity).where(entity.c.document_id.in_(ids))).rowcount or 0)
            docs += int(conn.execute(delete(document).where(document.c.id.in_(ids))).rowcount or 0)
    with db.write() as conn:
        groups.drop(conn, job_id)
        conn.execute(delete(notification).where(notification.c.job_id == job_id))
        conn.execute(delete(job).where(job.c.id == job_id))
    return {"job_id": job_id, "documents": docs, "entities": ents}


def finished_before(db: Database, cutoff: float) -> list[str]:
    """Ids of the finished jobs that finished before ``cutoff`` (epoch seconds), oldest first."""
    with db.read() as conn:
        return [r[0] for r in conn.execute(
            select(job.c.id).where(job.c.status.in_(sorted(JOB_TERMINAL)), job.c.finished_at < cutoff)
            .order_by(job.c.finished_at))]
