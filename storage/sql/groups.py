"""The corpus view: a job's canonical entities with mention and document counts, the strongest
co-occurring pairs, and every document mentioning an entity or its aliases.

A job's view is materialised, not maintained: :func:`build` groups its entities as a whole (one
``GROUP BY`` over the job's entities, the grouping itself in Python over the distinct surface
texts, exact document counts and pairs in SQL) and replaces the stored view in one transaction.
A worker builds it when its save finishes the job; a read builds it when it is missing or stale
(a running job, below :data:`LIVE_LIMIT` done documents; a job reopened by a retry). Why
materialised and not counted as documents finish: docs/corpus-view.md, with the measurements.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, and_, delete, func, insert, or_, select, \
    text, union_all, update
from sqlalchemy.engine import Connection

from storage.core.canon import NO_ALIASES, Aliases, aliases_of, canonical
from storage.core.domain import JOB_TERMINAL
from storage.core.errors import InvalidTransition, NotFound
from storage.core.lexicon import parse_canonical
from storage.sql.db import Database
from storage.sql.schema import dictionary, document, entity, entity_group, entity_pair, entity_surface, job

#: Groups (by rank) whose pairs are counted: co-occurrence among the corpus's most mentioned.
TOP_PAIRS = 1000
#: A pair is kept when at least this many documents mention both.
MIN_PAIR_DOCUMENTS = 2
#: A running job is grouped on request up to this many done documents; above, its view is built
#: when it finishes (a read in between gets the last one built, or a clear "not yet").
LIVE_LIMIT = 200_000
#: A running job's view is rebuilt on a read at most this often (seconds).
REGROUP_SECONDS = 10.0
#: A build claim older than this (seconds) is a builder that died: the next read takes it over.
BUILD_STALE_SECONDS = 3600.0
#: A read that finds another build under way and no earlier view waits this long (seconds) for it
#: before answering "ask again": the worker that finishes a job groups it at once, and a small
#: job's build is over long before a client that polled "finished" asks for the view.
BUILD_WAIT_SECONDS = 10.0
#: Rows written per INSERT.
_CHUNK = 5000

_temp = MetaData()
# Surface texts of the groups a query needs (multi-form groups, then the top groups), per
# connection: SQLite keeps TEMP tables outside the main database, so filling it takes no write lock.
_forms = Table("shiti_forms", _temp, Column("label", String(20)), Column("text", Text), Column("g", Integer),
               prefixes=["TEMPORARY"])


@dataclass
class _Group:
    label: str
    canon: str
    name: str | None = None  # the dictionary entry's text
    forms: list[tuple[str, int, int]] = field(default_factory=list)  # (text, mentions, documents)
    documents: int = 0

    @property
    def mentions(self) -> int:
        return sum(m for _, m, _ in self.forms)

    def display(self) -> str:
        """The dictionary entry's text, else the commonest surface form (ties: the smallest text)."""
        return self.name or min(self.forms, key=lambda f: (-f[1], f[0]))[0]


def job_aliases(conn: Connection, dictionary_id: int | None) -> Aliases:
    """The aliases of the dictionary a job recorded (none: no dictionary, or it is gone). A stored
    version never changes, so each is parsed once per process (keyed by its content hash)."""
    if dictionary_id is None:
        return NO_ALIASES
    digest = conn.execute(select(dictionary.c.content_hash).where(dictionary.c.id == dictionary_id)).scalar()
    if digest is None:
        return NO_ALIASES
    cached = _ALIASES.get(digest)
    if cached is None:
        content = conn.execute(select(dictionary.c.content).where(dictionary.c.id == dictionary_id)).scalar_one()
        cached = _ALIASES[digest] = aliases_of(parse_canonical(content))
        while len(_ALIASES) > 16:
            _ALIASES.pop(next(iter(_ALIASES)))
    return cached


_ALIASES: dict[str, Aliases] = {}


def _job_row(conn: Connection, job_id: str) -> Any:
    row = conn.execute(select(job.c.status, job.c.done, job.c.finished_at, job.c.dictionary_id, job.c.grouped_at,
                              job.c.grouped_done).where(job.c.id == job_id)).first()
    if row is None:
        raise NotFound(f"no job {job_id}")
    return row


def is_current(row: Any) -> bool:
    """Whether a job row's stored view covers what the job holds now."""
    return (row.grouped_at is not None and row.grouped_done == row.done
            and (row.finished_at is None or row.grouped_at >= row.finished_at))


def build(db: Database, job_id: str, *, top_pairs: int = TOP_PAIRS,
          min_pair_documents: int = MIN_PAIR_DOCUMENTS) -> dict[str, int]:
    """Group a job's entities into canonical entities and pairs, and replace its stored view.

    One build at a time per job: it claims the job first (``job.grouping_at``; a claim older than
    :data:`BUILD_STALE_SECONDS` is a builder that died and is taken over).

    Returns:
        ``{"groups", "forms", "pairs", "entities"}`` counted.
    Raises:
        NotFound: no such job. InvalidTransition: another build of it is under way.
    """
    now = time.time()
    with db.write() as conn:
        claimed = conn.execute(update(job).where(
            job.c.id == job_id, or_(job.c.grouping_at.is_(None), job.c.grouping_at < now - BUILD_STALE_SECONDS))
            .values(grouping_at=now)).rowcount
        if not claimed:
            since = conn.execute(select(job.c.grouping_at).where(job.c.id == job_id)).first()
            if since is None:
                raise NotFound(f"no job {job_id}")
            raise _being_built(job_id, since[0])
    try:
        return _build(db, job_id, top_pairs=top_pairs, min_pair_documents=min_pair_documents)
    except BaseException:
        with db.write() as conn:  # let the next read build it
            conn.execute(update(job).where(job.c.id == job_id, job.c.grouping_at == now).values(grouping_at=None))
        raise


def _being_built(job_id: str, since: float) -> InvalidTransition:
    return InvalidTransition(f"job {job_id}'s entities are being grouped (for {time.time() - since:.0f} s): "
                             "ask again shortly")


def _build(db: Database, job_id: str, *, top_pairs: int, min_pair_documents: int) -> dict[str, int]:
    with db.read() as conn:
        row = _job_row(conn, job_id)
        done = int(row.done)
        aliases = job_aliases(conn, row.dictionary_id)
        groups = _group_surfaces(conn, job_id, aliases)
        _count_documents(conn, job_id, [g for g in groups if len(g.forms) > 1])
        groups.sort(key=lambda g: (-g.documents, -g.mentions, g.label, g.canon))
        pairs = _count_pairs(conn, job_id, groups[:top_pairs], min_pair_documents)
    entities = sum(g.mentions for g in groups)
    with db.write() as conn:
        for table in (entity_pair, entity_surface, entity_group):
            conn.execute(delete(table).where(table.c.job_id == job_id))
        _insert(conn, entity_group, ({"job_id": job_id, "rank": r, "label": g.label, "canon": g.canon,
                                      "name": g.display(), "mentions": g.mentions, "documents": g.documents,
                                      "forms": len(g.forms)} for r, g in enumerate(groups, 1)))
        _insert(conn, entity_surface, ({"job_id": job_id, "label": g.label, "text": t, "rank": r, "mentions": m,
                                        "documents": d} for r, g in enumerate(groups, 1) for t, m, d in g.forms))
        _insert(conn, entity_pair, ({"job_id": job_id, "a": a, "b": b, "documents": n,
                                     "jaccard": n / (groups[a - 1].documents + groups[b - 1].documents - n)}
                                    for a, b, n in pairs))
        conn.execute(update(job).where(job.c.id == job_id).values(grouped_at=time.time(), grouped_done=done,
                                                                   grouping_at=None))
    return {"groups": len(groups), "forms": sum(len(g.forms) for g in groups), "pairs": len(pairs),
            "entities": entities}


def _group_surfaces(conn: Connection, job_id: str, aliases: Aliases) -> list[_Group]:
    # One pass over the job's (label, text) index; Python sees each distinct text once.
    stmt = (select(entity.c.label, entity.c.text, func.count(), func.count(entity.c.document_id.distinct()))
            .where(entity.c.job_id == job_id).group_by(entity.c.label, entity.c.text))
    groups: dict[tuple[str, str], _Group] = {}
    for label, surface, mentions, documents in conn.execute(stmt):
        canon, name = aliases.resolve(label, surface)
        g = groups.get((label, canon))
        if g is None:
            g = groups[(label, canon)] = _Group(label, canon, name)
        g.forms.append((surface, int(mentions), int(documents)))
    for g in groups.values():
        g.forms.sort(key=lambda f: (-f[1], f[0]))
        g.documents = g.forms[0][2]  # exact for one form; counted in SQL for several
    return list(groups.values())


def _fill_forms(conn: Connection, groups: Iterable[tuple[int, _Group]]) -> None:
    _forms.drop(conn, checkfirst=True)
    _forms.create(conn)
    _insert(conn, _forms, ({"label": g.label, "text": t, "g": i} for i, g in groups for t, _, _ in g.forms))


def _count_documents(conn: Connection, job_id: str, multi: Sequence[_Group]) -> None:
    """Exact document counts of groups with several forms (a document may hold two of them)."""
    if not multi:
        return
    _fill_forms(conn, enumerate(multi))
    stmt = (select(_forms.c.g, func.count(entity.c.document_id.distinct()))
            .select_from(entity.join(_forms, and_(entity.c.label == _forms.c.label, entity.c.text == _forms.c.text)))
            .where(entity.c.job_id == job_id).group_by(_forms.c.g))
    for g, n in conn.execute(stmt):
        multi[int(g)].documents = int(n)
    _forms.drop(conn)


def _count_pairs(conn: Connection, job_id: str, top: Sequence[_Group], min_documents: int) -> list[tuple[int, int, int]]:
    """``(rank a, rank b, documents)`` for pairs of ``top`` (ranked 1..n) in at least
    ``min_documents`` documents together, a < b."""
    if len(top) < 2:
        return []
    _fill_forms(conn, enumerate(top, 1))
    pairs = conn.execute(text(
        "WITH m AS (SELECT DISTINCT e.document_id AS d, f.g AS g FROM entity e "
        "JOIN shiti_forms f ON e.label = f.label AND e.text = f.text WHERE e.job_id = :job) "
        "SELECT x.g, y.g, count(*) FROM m x JOIN m y ON x.d = y.d AND x.g < y.g "
        "GROUP BY x.g, y.g HAVING count(*) >= :n"), {"job": job_id, "n": min_documents}).all()
    _forms.drop(conn)
    return [(int(a), int(b), int(n)) for a, b, n in pairs]


def _insert(conn: Connection, table: Table, rows: Iterable[dict[str, Any]]) -> None:
    chunk: list[dict[str, Any]] = []
    for r in rows:
        chunk.append(r)
        if len(chunk) >= _CHUNK:
            conn.execute(insert(table), chunk)
            chunk = []
    if chunk:
        conn.execute(insert(table), chunk)


def drop(conn: Connection, job_id: str) -> None:
    """Delete a job's stored view (its purge)."""
    for table in (entity_pair, entity_surface, entity_group):
        conn.execute(delete(table).where(table.c.job_id == job_id))


@dataclass(frozen=True)
class ViewState:
    """Whether the stored view is the whole job's (``complete``: the job is finished and the view
    covers it) and when it was grouped, over how many done documents."""

    complete: bool
    grouped_at: float
    documents: int


def _wait_for_build(db: Database, job_id: str, wait: float) -> None:
    """Wait up to ``wait`` seconds for another builder's claim on the job to end.

    Raises:
        InvalidTransition: it is still building after that.
    """
    deadline = time.monotonic() + wait
    pause = 0.02
    while True:
        with db.read() as conn:
            since = conn.execute(select(job.c.grouping_at).where(job.c.id == job_id)).scalar()
        if since is None:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise _being_built(job_id, since)
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.5)


def ensure(db: Database, job_id: str, *, live_limit: int | None = None,
           wait: float = BUILD_WAIT_SECONDS) -> ViewState:
    """The job's view, built first when it is missing or stale and cheap enough to build now: a
    finished job's always, a running job's up to ``live_limit`` done documents and at most every
    :data:`REGROUP_SECONDS`.

    When another build is under way and no view was built before, waits up to ``wait`` seconds
    for it.

    Raises:
        NotFound: no such job. InvalidTransition: a running job over ``live_limit`` done documents
            (default :data:`LIVE_LIMIT`) with no view yet (it is built when the job finishes), or
            another build still under way after ``wait``.
    """
    live_limit = LIVE_LIMIT if live_limit is None else live_limit
    with db.read() as conn:
        row = _job_row(conn, job_id)
    terminal = row.status in JOB_TERMINAL
    # A running job's view is rebuilt at most every REGROUP_SECONDS, however often it is read.
    fresh = row.grouped_at is not None and time.time() - row.grouped_at < REGROUP_SECONDS
    if not is_current(row) and (terminal or (row.done <= live_limit and not fresh)):
        try:
            build(db, job_id)
        except InvalidTransition:
            if row.grouped_at is None:  # being built, and nothing built before to show meanwhile
                _wait_for_build(db, job_id, wait)
                with db.read() as conn:
                    if _job_row(conn, job_id).grouped_at is None:  # that builder failed: build it here
                        build(db, job_id)
        with db.read() as conn:
            row = _job_row(conn, job_id)
    if row.grouped_at is None:
        raise InvalidTransition(f"job {job_id} is {row.status} with {row.done:,} documents done: its entities are "
                                "grouped when it finishes")
    return ViewState(complete=terminal and is_current(row), grouped_at=float(row.grouped_at),
                     documents=int(row.grouped_done or 0))


def _forms_of(conn: Connection, job_id: str, ranks: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {r: [] for r in ranks}
    if ranks:
        for r in conn.execute(select(entity_surface.c.rank, entity_surface.c.text, entity_surface.c.mentions)
                              .where(entity_surface.c.job_id == job_id, entity_surface.c.rank.in_(list(ranks)))
                              .order_by(entity_surface.c.rank, entity_surface.c.mentions.desc(),
                                        entity_surface.c.text)):
            out[r.rank].append({"text": r.text, "mentions": int(r.mentions)})
    return out


def _group_view(r: Any, forms: list[dict[str, Any]]) -> dict[str, Any]:
    return {"rank": int(r.rank), "label": r.label, "name": r.name, "canon": r.canon, "mentions": int(r.mentions),
            "documents": int(r.documents), "forms": forms}


def group_page(db: Database, job_id: str, *, label: str | None = None, after: int = 0,
               limit: int = 50) -> list[dict[str, Any]]:
    """Canonical entities by rank (most documents first) after rank ``after``, of one type or all,
    each with its surface forms (most mentioned first)."""
    cond = [entity_group.c.job_id == job_id, entity_group.c.rank > after]
    if label is not None:
        cond.append(entity_group.c.label == label)
    with db.read() as conn:
        rows = conn.execute(select(entity_group).where(*cond).order_by(entity_group.c.rank).limit(limit)).all()
        forms = _forms_of(conn, job_id, [r.rank for r in rows])
    return [_group_view(r, forms[r.rank]) for r in rows]


def find_groups(db: Database, job_id: str, name: str, *, label: str | None = None) -> list[dict[str, Any]]:
    """The canonical entities ``name`` is a spelling of (any form, a Traditional or full-width one,
    or a dictionary alias), one per type unless ``label`` is given, by rank."""
    with db.read() as conn:
        dictionary_id = conn.execute(select(job.c.dictionary_id).where(job.c.id == job_id)).scalar()
        aliases = job_aliases(conn, dictionary_id)
        form = canonical(name)
        # The canonical forms it may resolve to: its own, and an alias's target under some type.
        targets = {form} | aliases.targets_of(form)
        cond = [entity_group.c.job_id == job_id, entity_group.c.canon.in_(sorted(targets))]
        if label is not None:
            cond.append(entity_group.c.label == label)
        rows = [r for r in conn.execute(select(entity_group).where(*cond).order_by(entity_group.c.rank))
                if aliases.resolve(r.label, name)[0] == r.canon]
        forms = _forms_of(conn, job_id, [r.rank for r in rows])
    return [_group_view(r, forms[r.rank]) for r in rows]


def group_of(db: Database, job_id: str, rank: int) -> dict[str, Any]:
    """One canonical entity by rank.

    Raises:
        NotFound: no group of that rank.
    """
    with db.read() as conn:
        row = conn.execute(select(entity_group).where(entity_group.c.job_id == job_id,
                                                      entity_group.c.rank == rank)).first()
        if row is None:
            raise NotFound(f"job {job_id} has no entity group {rank}")
        return _group_view(row, _forms_of(conn, job_id, [rank])[rank])


def pairs(db: Database, job_id: str, *, rank: int | None = None, by: str = "documents",
          limit: int = 50) -> list[dict[str, Any]]:
    """The strongest co-occurring pairs (of one group, when ``rank`` is given), ordered by
    documents together or by Jaccard (documents together / documents mentioning either)."""
    order = entity_pair.c.jaccard if by == "jaccard" else entity_pair.c.documents
    cond = [entity_pair.c.job_id == job_id]
    if rank is not None:
        cond.append(or_(entity_pair.c.a == rank, entity_pair.c.b == rank))
    with db.read() as conn:
        rows = conn.execute(select(entity_pair).where(*cond)
                            .order_by(order.desc(), entity_pair.c.a, entity_pair.c.b).limit(limit)).all()
        ranks = sorted({r.a for r in rows} | {r.b for r in rows})
        heads = {g.rank: g for g in conn.execute(select(entity_group).where(
            entity_group.c.job_id == job_id, entity_group.c.rank.in_(ranks)))} if ranks else {}
    def end(g: Any) -> dict[str, Any]:
        return {"rank": int(g.rank), "label": g.label, "name": g.name, "documents": int(g.documents)}
    return [{"a": end(heads[r.a]), "b": end(heads[r.b]), "documents": int(r.documents),
             "jaccard": round(float(r.jaccard), 4)} for r in rows]


#: Characters of context shown on each side of a document's first mention.
CONTEXT = 30


def _snippet(text: str, spans: list[dict[str, Any]]) -> dict[str, Any]:
    """The text around the first mention: ``snippet`` and where it starts in the document."""
    first = spans[0] if spans else {"start": 0, "end": 0}
    start = max(0, first["start"] - CONTEXT)
    return {"snippet": text[start:first["end"] + CONTEXT], "snippet_start": start}


#: A group with more forms than this is looked up with one IN list instead of a range per form.
_MAX_RANGES = 64


def mention_page(db: Database, job_id: str, rank: int, *, after: int = 0,
                 limit: int = 50) -> tuple[list[dict[str, Any]], int | None]:
    """Documents mentioning group ``rank`` (any of its forms), in the order of their first
    mention's row, after entity row ``after``: ``([{doc_id, mentions: [{start, end, text}],
    snippet, snippet_start}], next cursor or None)``.

    Each form is one keyset range of the ``(job, label, text, id)`` index, so a page costs the
    page, not the group's mention count; a document is listed at its first mention of the group.
    """
    with db.read() as conn:
        head = conn.execute(select(entity_group.c.label).where(entity_group.c.job_id == job_id,
                                                               entity_group.c.rank == rank)).first()
        if head is None:
            raise NotFound(f"job {job_id} has no entity group {rank}")
        label = head.label
        texts = [r[0] for r in conn.execute(select(entity_surface.c.text).where(
            entity_surface.c.job_id == job_id, entity_surface.c.rank == rank))]
        earlier = entity.alias("earlier")
        # "This row is the document's first mention of the group", as a scalar subquery over the
        # document's own rows: evaluated per candidate through the document's index, so a page
        # costs the page. (As NOT EXISTS, PostgreSQL plans an anti-join that hashes every mention
        # of the text in the job; SQLite walks the (job, label, text, id) index unless the
        # ``|| ''`` keeps it off.)
        first = entity.c.id == (select(func.min(earlier.c.id))
                                .where(earlier.c.document_id == entity.c.document_id, (earlier.c.label + "") == label,
                                       (earlier.c.text + "").in_(texts))
                                .scalar_subquery())
        def scan(cond: Any) -> Any:
            return (select(entity.c.id, entity.c.document_id)
                    .where(entity.c.job_id == job_id, entity.c.label == label, cond, entity.c.id > after, first)
                    .order_by(entity.c.id).limit(limit))
        if len(texts) <= _MAX_RANGES:
            ranges = [scan(entity.c.text == t).subquery() for t in texts]
            both = union_all(*[select(r.c.id, r.c.document_id) for r in ranges]).subquery()
            stmt = select(both.c.id, both.c.document_id).order_by(both.c.id).limit(limit)
        else:
            stmt = scan(entity.c.text.in_(texts))
        hits = conn.execute(stmt).all()
        doc_ids = [int(h.document_id) for h in hits]
        docs = {int(r.id): r for r in conn.execute(select(document.c.id, document.c.ext_id, document.c.text)
                                                   .where(document.c.id.in_(doc_ids)))} if doc_ids else {}
        spans: dict[int, list[dict[str, Any]]] = {d: [] for d in doc_ids}
        if doc_ids:
            for e in conn.execute(select(entity.c.document_id, entity.c.start, entity.c.end, entity.c.text)
                                  .where(entity.c.document_id.in_(doc_ids), entity.c.label == label,
                                         entity.c.text.in_(texts)).order_by(entity.c.document_id, entity.c.start)):
                spans[int(e.document_id)].append({"start": int(e.start), "end": int(e.end), "text": e.text})
    items = [{"doc_id": docs[d].ext_id, "mentions": spans[d], **_snippet(docs[d].text, spans[d])} for d in doc_ids]
    return items, (int(hits[-1].id) if len(hits) == limit else None)

