"""What an annotator should look at first: per-document certainty of a job's entities, read in
pages (one grouped query each), for ``shiti sample``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import and_, case, func, select

from storage.core.domain import DocumentStatus as D
from storage.sql.db import Database
from storage.sql.schema import document, entity

#: An entity scored under this is "unsure" (the calibrated score is the chance it is right).
UNSURE = 0.9


@dataclass(frozen=True, slots=True)
class Certainty:
    """One done document: its least entity score (None: no entity), how many entities it has and
    how many are scored under :data:`UNSURE`."""

    row_id: int
    doc_id: str
    least: float | None
    entities: int
    unsure: int


def certainties(db: Database, job_id: str, *, page: int = 2000) -> Iterator[Certainty]:
    """Every done document of ``job_id`` with its entities' certainty, in stored order."""
    last = 0
    while True:
        stmt = (select(document.c.id, document.c.ext_id, func.min(entity.c.score), func.count(entity.c.id),
                       func.sum(case((entity.c.score < UNSURE, 1), else_=0)))
                .select_from(document.outerjoin(entity, and_(entity.c.document_id == document.c.id)))
                .where(document.c.job_id == job_id, document.c.status == D.DONE, document.c.id > last)
                .group_by(document.c.id, document.c.ext_id).order_by(document.c.id).limit(page))
        with db.read() as conn:
            rows = conn.execute(stmt).all()
        if not rows:
            return
        for r in rows:
            yield Certainty(int(r[0]), str(r[1]), None if r[2] is None else float(r[2]), int(r[3]), int(r[4] or 0))
        last = int(rows[-1][0])
