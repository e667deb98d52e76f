"""Comparing the entities of two jobs over the same documents (a job and its rerun by another model).

Documents are matched by ``doc_id`` (the id given at submit). Jobs whose documents differ (another
id set, or another text under one id) are refused: the spans would not be comparable. Within a
document, an entity is its span ``(start, end)`` and type: a span in one job only is "only in A" or
"only in B"; a span both jobs found with one type each, but not the same one, is "changed".
A job and corrections (storage/sql/gold.py) of its documents are compared on the corrected
documents only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import and_, func, select

from storage.sql.db import Database
from storage.core.domain import JOB_TERMINAL
from storage.core.errors import PermanentError
from storage.sql.queries import entities_of, get_job
from storage.sql.schema import document, job
from storage.core.views import DiffCounts, DiffItem, DiffView, SpanView


class NotComparable(PermanentError):
    """The two jobs do not hold the same documents."""


def diff_spans(a: Sequence[SpanView], b: Sequence[SpanView]) -> tuple[list[SpanView], list[SpanView],
                                                                        list[tuple[SpanView, SpanView]]]:
    """One document's differences: ``(only_a, only_b, changed)``, each in span order.

    ``changed`` pairs the A and B entity of a span both found with exactly one type each, types
    differing; any other difference at a span is per type (only in A / only in B).
    """
    def by_span(spans: Sequence[SpanView]) -> dict[tuple[int, int], dict[str, SpanView]]:
        out: dict[tuple[int, int], dict[str, SpanView]] = {}
        for s in spans:
            out.setdefault((s["start"], s["end"]), {})[s["label"]] = s
        return out

    sa, sb = by_span(a), by_span(b)
    only_a: list[SpanView] = []
    only_b: list[SpanView] = []
    changed: list[tuple[SpanView, SpanView]] = []
    for span in sorted(sa.keys() | sb.keys()):
        la, lb = sa.get(span, {}), sb.get(span, {})
        if la.keys() == lb.keys():
            continue
        if len(la) == 1 and len(lb) == 1:
            changed.append((next(iter(la.values())), next(iter(lb.values()))))
            continue
        only_a += [la[k] for k in sorted(la.keys() - lb.keys())]
        only_b += [lb[k] for k in sorted(lb.keys() - la.keys())]
    return only_a, only_b, changed


def _pairs(db: Database, job_a: str, job_b: str, page: int) -> Iterator[list[tuple[int, int, str]]]:
    """``(doc id in A, doc id in B, doc_id)`` of the shared documents, in A's order, a page at a time."""
    da, db_ = document.alias("a"), document.alias("b")
    last = 0
    while True:
        with db.read() as conn:
            rows = [(int(r[0]), int(r[1]), str(r[2])) for r in conn.execute(
                select(da.c.id, db_.c.id, da.c.ext_id)
                .join(db_, and_(db_.c.job_id == job_b, db_.c.ext_id == da.c.ext_id))
                .where(da.c.job_id == job_a, da.c.id > last).order_by(da.c.id).limit(page))]
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def check_comparable(db: Database, job_a: str, job_b: str) -> int:
    """The number of documents the jobs share.

    Raises:
        NotComparable: their documents differ (ids or texts), each count named; when one job holds
            corrections, its documents must all be the other's.
    """
    da, db_ = document.alias("a"), document.alias("b")
    with db.read() as conn:
        n_a = int(conn.execute(select(func.count()).where(document.c.job_id == job_a)).scalar_one())
        n_b = int(conn.execute(select(func.count()).where(document.c.job_id == job_b)).scalar_one())
        same = int(conn.execute(
            select(func.count()).select_from(da)
            .join(db_, and_(db_.c.job_id == job_b, db_.c.ext_id == da.c.ext_id, db_.c.text == da.c.text))
            .where(da.c.job_id == job_a)).scalar_one())
        gold = dict(conn.execute(select(job.c.id, job.c.gold_of).where(job.c.id.in_([job_a, job_b]))).all())
    gold_a, gold_b = gold.get(job_a), gold.get(job_b)
    if gold_b is not None and same == n_b or gold_a is not None and same == n_a:
        # Corrections hold some of a corpus's documents (of their job, or of a rerun of it):
        # compared on those.
        return same
    if not n_a == n_b == same:
        raise NotComparable(
            f"jobs {job_a} ({n_a} documents) and {job_b} ({n_b}) do not hold the same documents: {same} match by "
            "doc_id and text. diff compares the same corpus, e.g. a job and its rerun (`shiti rerun`)")
    return same


def _count(by_label: dict[str, DiffCounts], label: str, key: str) -> None:
    counts = by_label.setdefault(label, {"only_a": 0, "only_b": 0, "changed": 0})
    counts[key] += 1  # type: ignore[literal-required]


def diff_jobs(db: Database, job_a: str, job_b: str, *, limit: int = 100, page: int = 500) -> DiffView:
    """Entities only in ``job_a``, only in ``job_b``, and changed type, with counts per type
    (every difference is counted; the lists stop at ``limit`` items each). ``complete`` is False
    while either job runs: its untagged documents count as having no entities.

    Raises:
        NotFound: either job is unknown.
        NotComparable: the jobs hold different documents.
    """
    row_a, row_b = get_job(db, job_a), get_job(db, job_b)
    shared = check_comparable(db, job_a, job_b)
    totals: DiffCounts = {"only_a": 0, "only_b": 0, "changed": 0}
    by_label: dict[str, DiffCounts] = {}
    lists: dict[str, list[DiffItem]] = {"only_a": [], "only_b": [], "changed": []}

    def keep(key: str, doc_id: str, e: SpanView, label_b: str | None = None) -> None:
        totals[key] += 1  # type: ignore[literal-required]
        _count(by_label, e["label"], key)
        if len(lists[key]) < limit:
            item: DiffItem = {"doc_id": doc_id, "start": e["start"], "end": e["end"], "text": e["text"],
                              "label": e["label"]}
            if label_b is not None:
                item["label_b"] = label_b
            lists[key].append(item)

    for rows in _pairs(db, job_a, job_b, page):
        with db.read() as conn:
            ents = entities_of(conn, [r[0] for r in rows] + [r[1] for r in rows])
        for id_a, id_b, doc_id in rows:
            only_a, only_b, changed = diff_spans(ents[id_a], ents[id_b])
            for e in only_a:
                keep("only_a", doc_id, e)
            for e in only_b:
                keep("only_b", doc_id, e)
            for ea, eb in changed:
                keep("changed", doc_id, ea, eb["label"])
    return {"job_a": job_a, "job_b": job_b, "model_a": row_a["model"], "model_b": row_b["model"],
            "documents": shared, "counts": totals, "by_label": dict(sorted(by_label.items())),
            "only_a": lists["only_a"], "only_b": lists["only_b"], "changed": lists["changed"],
            "truncated": any(totals[k] > len(lists[k]) for k in lists),  # type: ignore[literal-required]
            "complete": row_a["status"] in JOB_TERMINAL and row_b["status"] in JOB_TERMINAL}


def disagreements(db: Database, job_a: str, job_b: str, *, page: int = 500) -> Iterator[tuple[int, str, int]]:
    """``(row id in A, doc_id, differences)`` for every document the jobs share, in A's order:
    how many entities are only in one job or changed type (``diff_spans``).

    Raises:
        NotFound: either job is unknown.
        NotComparable: the jobs hold different documents.
    """
    get_job(db, job_a), get_job(db, job_b)
    check_comparable(db, job_a, job_b)
    for rows in _pairs(db, job_a, job_b, page):
        with db.read() as conn:
            ents = entities_of(conn, [r[0] for r in rows] + [r[1] for r in rows])
        for id_a, id_b, doc_id in rows:
            only_a, only_b, changed = diff_spans(ents[id_a], ents[id_b])
            yield id_a, doc_id, len(only_a) + len(only_b) + len(changed)
