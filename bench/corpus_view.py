"""The corpus view at scale (storage/sql/groups.py), on SQLite and PostgreSQL, no model involved.

1. **load**: a finished job of ``--docs`` documents holding ``--entities`` entity rows, bulk
   loaded (executemany / COPY), names drawn Zipf-like from ~60k (type, text) pairs, a tenth of
   them also written in Traditional script (so groups hold several forms).
2. **build**: ``groups.build`` (what the worker runs when its save finishes the job): wall time,
   groups, forms, pairs.
3. **queries** (median of 7, after one warm-up): a page of groups (all types, one type, deep),
   a name look-up by a Traditional spelling, the top pairs by documents and by Jaccard, the pairs
   of the most mentioned entity, and pages of "documents mentioning" it (first and mid-way).
4. **maintained instead** (the alternative the issue asks to measure): for ``--batches`` batches
   of 64 documents, the time a worker's save spends inserting the batch's entity rows, and what
   keeping per-group counts up to date in the same save would add (one upsert per group of the
   batch). Pairs and exact counts of several-form groups cannot be maintained that way.
5. **check**: the top groups' counts equal a direct ``COUNT`` over the entity table.

Usage: ``python -W ignore bench/corpus_view.py [--docs 100000] [--entities 1000000] [--db sqlite,postgres]``
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import REPO, base_parser, cpu_note, median, sample_sentences, table

sys.path.insert(0, str(REPO))


def vocabulary(rng: random.Random) -> list[tuple[str, str, str | None]]:
    """~60k (type, text, Traditional spelling or None) drawn from MSRA substrings."""
    from storage.core.fold import _table

    back: dict[str, str] = {}
    for trad, simp in _table()[0].items():
        back.setdefault(chr(simp), chr(trad))
    out = []
    for label, text in draw_names(rng, chinese_only=True):
        trad = "".join(back.get(c, c) for c in text)
        out.append((label, text, trad if trad != text and rng.random() < 0.1 else None))
    return out


def draw_names(rng: random.Random, *, chinese_only: bool = False) -> list[tuple[str, str]]:
    """~60k distinct (type, text) cut from sample text (fewer from the small bundled corpus)."""
    sents = "".join(sample_sentences())
    seen: dict[str, str] = {}
    for _ in range(2_000_000):
        if len(seen) >= 60_000:
            break
        k = rng.choice((2, 2, 3, 3, 3, 4, 5, 6))
        at = rng.randrange(len(sents) - k)
        word = sents[at:at + k]
        if not chinese_only or all("\u4e00" <= c <= "\u9fff" for c in word):
            seen.setdefault(word, rng.choice(("PER", "LOC", "ORG")))
    return [(label, text) for text, label in seen.items()]


def load(db: Any, ndocs: int, nents: int) -> tuple[str, float]:
    """A finished job of ``ndocs`` documents and ``nents`` entities; returns (job id, seconds)."""
    from sqlalchemy import func, select, update

    from storage.sql import repo
    from storage.sql.schema import document, entity, job

    rng = random.Random(7)
    vocab = vocabulary(rng)
    cum, acc = [], 0.0
    for i in range(len(vocab)):
        acc += 1 / (i + 1) ** 0.9
        cum.append(acc)
    job_id, _ = repo.create_job(db, name="corpus view bench")
    t0 = time.perf_counter()
    text = "张伟在北京的清华大学读书，毕业后去了上海。"
    docs = ((job_id, f"d{i}", i + 1, text, len(text), "done", 1) for i in range(ndocs))
    bulk_load(db, "document", ("job_id", "ext_id", "line", "text", "n_chars", "status", "attempts"), docs)
    with db.read() as conn:
        lo, hi = conn.execute(select(func.min(document.c.id), func.max(document.c.id))
                              .where(document.c.job_id == job_id)).one()
    per_doc = max(1, -(-nents // (hi - lo + 1)))

    def rows() -> Any:
        written = 0
        while written < nents:
            m = min(200_000, nents - written)
            for j, (label, t, trad) in enumerate(rng.choices(vocab, cum_weights=cum, k=m)):
                k = written + j
                form = trad if trad is not None and rng.random() < 0.3 else t
                slot = k % per_doc
                yield (job_id, lo + k // per_doc, slot * 8, slot * 8 + len(form), label, form, 0.9, "model")
            written += m
    load_entity_rows(db, ("job_id", "document_id", "start", '"end"', "label", "text", "score", "source"), rows())
    with db.engine.begin() as conn:
        conn.execute(update(job).where(job.c.id == job_id).values(
            status="succeeded", sealed=True, total=ndocs, done=ndocs, finished_at=time.time()))
    with db.read() as conn:
        assert conn.execute(select(func.count()).where(entity.c.job_id == job_id)).scalar_one() == nents
        assert conn.execute(select(func.count()).where(document.c.job_id == job_id)).scalar_one() == ndocs
    return job_id, time.perf_counter() - t0


def bulk_load(db: Any, table_name: str, cols: tuple[str, ...], rows: Any) -> None:
    """``rows`` into ``table_name`` in one transaction: COPY on PostgreSQL, executemany in 100k
    chunks on SQLite."""
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        if db.dialect == "postgresql":
            with cur.copy(f"COPY {table_name} ({', '.join(cols)}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(r)
        else:
            cur.execute("BEGIN")
            sql = f"INSERT INTO {table_name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            chunk: list[Any] = []
            for r in rows:
                chunk.append(r)
                if len(chunk) >= 100_000:
                    cur.executemany(sql, chunk)
                    chunk = []
            if chunk:
                cur.executemany(sql, chunk)
        raw.commit()
    finally:
        raw.close()


def load_entity_rows(db: Any, cols: tuple[str, ...], rows: Any) -> None:
    """Entity rows bulk-loaded with the table's secondary indexes dropped, then rebuilt once, and
    the planner's statistics refreshed."""
    from storage.sql.schema import entity

    with db.engine.begin() as conn:
        for idx in entity.indexes:
            idx.drop(conn)
    bulk_load(db, "entity", cols, rows)
    with db.engine.begin() as conn:
        for idx in entity.indexes:
            idx.create(conn)
        conn.exec_driver_sql("ANALYZE")


def timed(fn: Any, n: int = 7) -> float:
    fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return median(out) * 1000


def queries(db: Any, job_id: str) -> list[tuple[str, float]]:
    from sqlalchemy import select

    from storage.core.fold import _table
    from storage.sql import groups
    from storage.sql.schema import entity, entity_surface

    top = groups.group_page(db, job_id, limit=1)[0]
    multi = next((g for g in groups.group_page(db, job_id, limit=1000) if len(g["forms"]) > 1), top)
    back = {chr(s): chr(t) for t, s in _table()[0].items()}
    trad = "".join(back.get(c, c) for c in multi["name"])
    with db.read() as conn:
        texts = [r[0] for r in conn.execute(select(entity_surface.c.text).where(
            entity_surface.c.job_id == job_id, entity_surface.c.rank == top["rank"]))]
        ids = [r[0] for r in conn.execute(select(entity.c.id).where(
            entity.c.job_id == job_id, entity.c.label == top["label"], entity.c.text.in_(texts))
            .order_by(entity.c.id))]
    mid = ids[len(ids) // 2]
    return [
        ("groups, first page of 50 (all types)", timed(lambda: groups.group_page(db, job_id, limit=50))),
        ("groups, first page of 50 (LOC)", timed(lambda: groups.group_page(db, job_id, label="LOC", limit=50))),
        ("groups, page after rank 20,000", timed(lambda: groups.group_page(db, job_id, after=20_000, limit=50))),
        (f"look up {trad} (Traditional of a {len(multi['forms'])}-form group)",
         timed(lambda: groups.find_groups(db, job_id, trad))),
        ("pairs, top 50 by documents", timed(lambda: groups.pairs(db, job_id, limit=50))),
        ("pairs, top 50 by Jaccard", timed(lambda: groups.pairs(db, job_id, by="jaccard", limit=50))),
        (f"pairs of #1 {top['name']}", timed(lambda: groups.pairs(db, job_id, rank=top["rank"], limit=50))),
        (f"documents mentioning #1 ({len(ids):,} mentions), first page of 50",
         timed(lambda: groups.mention_page(db, job_id, top["rank"], limit=50))),
        ("documents mentioning #1, a page half-way", timed(lambda: groups.mention_page(db, job_id, top["rank"],
                                                                                        after=mid, limit=50))),
    ]


def maintained(db: Any, job_id: str, batches: int) -> tuple[float, float]:
    """(ms per 64-document batch to insert its entity rows, ms the live counts would add)."""
    from sqlalchemy import insert, select, text

    from storage.core.canon import canonical
    from storage.sql.schema import entity

    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS bench_live_group (job_id VARCHAR(32), label VARCHAR(20), "
                             "canon TEXT, mentions INTEGER, documents INTEGER, PRIMARY KEY (job_id, label, canon))")
    with db.read() as conn:
        rows = conn.execute(select(entity.c.document_id, entity.c.start, entity.c.end, entity.c.label, entity.c.text)
                            .where(entity.c.job_id == job_id).order_by(entity.c.document_id)
                            .limit(batches * 64 * 12)).all()
    by_doc: dict[int, list[Any]] = {}
    for r in rows:
        by_doc.setdefault(r.document_id, []).append(r)
    docs = list(by_doc.items())[: batches * 64]
    upsert = text("INSERT INTO bench_live_group (job_id, label, canon, mentions, documents) "
                  "VALUES (:j, :l, :c, :m, :d) ON CONFLICT (job_id, label, canon) DO UPDATE SET "
                  "mentions = bench_live_group.mentions + excluded.mentions, "
                  "documents = bench_live_group.documents + excluded.documents")
    save, extra = [], []
    for b in range(0, len(docs), 64):
        batch = docs[b:b + 64]
        ents = [{"job_id": "bench-live", "document_id": d, "start": e.start, "end": e.end, "label": e.label,
                 "text": e.text, "score": 0.9, "source": "model"} for d, es in batch for e in es]
        t0 = time.perf_counter()
        with db.write() as conn:
            conn.execute(insert(entity), [{**e, "start": e["start"] + 1_000_000} for e in ents])
        t1 = time.perf_counter()
        mentions: Counter[tuple[str, str]] = Counter()
        documents: Counter[tuple[str, str]] = Counter()
        for _, es in batch:
            keys = [(e.label, canonical(e.text)) for e in es]
            mentions.update(keys)
            documents.update(set(keys))
        with db.write() as conn:
            conn.execute(upsert, [{"j": "bench-live", "l": k[0], "c": k[1], "m": mentions[k], "d": documents[k]}
                                  for k in sorted(mentions)])
        t2 = time.perf_counter()
        save.append(t1 - t0)
        extra.append(t2 - t1)
    with db.write() as conn:
        conn.exec_driver_sql("DELETE FROM entity WHERE job_id = 'bench-live'")
        conn.exec_driver_sql("DROP TABLE bench_live_group")
    return median(save) * 1000, median(extra) * 1000


def check(db: Any, job_id: str) -> None:
    """The top groups' counts against a direct count of the entity table."""
    from sqlalchemy import func, select

    from storage.sql import groups
    from storage.sql.schema import entity

    for g in groups.group_page(db, job_id, limit=20):
        texts = [f["text"] for f in g["forms"]]
        with db.read() as conn:
            n, d = conn.execute(select(func.count(), func.count(entity.c.document_id.distinct())).where(
                entity.c.job_id == job_id, entity.c.label == g["label"], entity.c.text.in_(texts))).one()
        assert (n, d) == (g["mentions"], g["documents"]), (g, n, d)


def run(name: str, args: Any) -> list[list[Any]]:
    from scale_sql import backend

    from storage.core.settings import Settings
    from storage.sql import groups
    from storage.sql.db import get_database

    with tempfile.TemporaryDirectory(prefix="shiti-corpus-view-") as tmp, backend(name, Path(tmp)) as url:
        db = get_database(Settings(data_dir=Path(tmp), database_url=url))
        job_id, secs = load(db, args.docs, args.entities)
        print(f"[{name}] loaded {args.docs:,} documents, {args.entities:,} entities in {secs:.0f} s", flush=True)
        t0 = time.perf_counter()
        built = groups.build(db, job_id)
        build_s = time.perf_counter() - t0
        print(f"[{name}] build: {build_s:.1f} s ({built['groups']:,} groups, {built['forms']:,} forms, "
              f"{built['pairs']:,} pairs; {args.entities / build_s:,.0f} entities/s)", flush=True)
        check(db, job_id)
        rows = [[name, what, f"{ms:.1f}"] for what, ms in queries(db, job_id)]
        save_ms, extra_ms = maintained(db, job_id, args.batches)
        per_doc = args.entities / args.docs
        print(f"[{name}] maintained instead: a 64-document save ({64 * per_doc:.0f} entities) takes "
              f"{save_ms:.1f} ms to insert its entities; live counts would add {extra_ms:.1f} ms "
              f"({extra_ms / save_ms:.0%}); over the job: {extra_ms * args.docs / 64 / 1000:.0f} s of worker time "
              f"against {build_s:.0f} s once at the end", flush=True)
        return rows + [[name, "build (s)", f"{build_s:.1f}"]]


def main() -> None:
    ap = base_parser(__doc__)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--entities", type=int, default=1_000_000)
    ap.add_argument("--db", default="sqlite,postgres")
    ap.add_argument("--batches", type=int, default=100)
    args = ap.parse_args()
    print(cpu_note(), flush=True)
    out: list[list[Any]] = []
    for name in args.db.split(","):
        out += run(name, args)
    print(table(["database", "query", "ms (median of 7)"], out))


if __name__ == "__main__":
    main()
