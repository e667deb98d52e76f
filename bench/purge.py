"""Retention at scale: a finished job of N documents with K entities each is purged by
``storage.sql.retention.purge_job`` in batches; prints the wall time, documents/s and the longest
single transaction (what a worker writing another job might wait behind, on SQLite's one writer).

    python -W ignore bench/purge.py [--docs 100000] [--entities 5] [--batch 2000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--entities", type=int, default=5)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--database-url", default="")
    args = ap.parse_args()
    from sqlalchemy import insert, select, update

    from storage.core.settings import Settings
    from storage.sql import repo, retention
    from storage.sql.db import get_database
    from storage.sql.schema import document, entity, job

    tmp = tempfile.mkdtemp(prefix="shiti-purge-")
    db = get_database(Settings(data_dir=Path(tmp), database_url=args.database_url))
    job_id, _ = repo.create_job(db, name="purge bench")
    t0 = time.perf_counter()
    text = "张伟在北京的清华大学读书，毕业后去了上海。"
    for start in range(0, args.docs, 10_000):
        n = min(10_000, args.docs - start)
        with db.write() as conn:
            conn.execute(insert(document), [{"job_id": job_id, "ext_id": f"d{start + i}", "line": start + i + 1,
                                             "text": text, "n_chars": len(text), "status": "done", "attempts": 1}
                                            for i in range(n)])
            ids = [r[0] for r in conn.execute(select(document.c.id).where(document.c.job_id == job_id)
                                              .order_by(document.c.id.desc()).limit(n))]
            conn.execute(insert(entity), [{"job_id": job_id, "document_id": d, "start": k * 2, "end": k * 2 + 2,
                                           "label": "PER", "text": text[k * 2:k * 2 + 2], "score": 0.9,
                                           "source": "model"} for d in ids for k in range(args.entities)])
    with db.write() as conn:
        conn.execute(update(job).where(job.c.id == job_id).values(status="succeeded", sealed=True,
                                                                   total=args.docs, done=args.docs,
                                                                   finished_at=time.time()))
    print(f"built {args.docs:,} documents, {args.docs * args.entities:,} entities in {time.perf_counter() - t0:.1f} s")
    longest = [0.0]
    write = db.write

    @contextmanager
    def timed() -> Iterator[Any]:
        t = time.perf_counter()
        with write() as conn:
            yield conn
        longest[0] = max(longest[0], time.perf_counter() - t)

    object.__setattr__(db, "write", timed)  # Database is frozen: time each transaction of this run only
    t0 = time.perf_counter()
    done = retention.purge_job(db, job_id, batch=args.batch)
    wall = time.perf_counter() - t0
    print(f"purged {done['documents']:,} documents and {done['entities']:,} entities in {wall:.1f} s "
          f"({done['documents'] / wall:,.0f} docs/s, {done['entities'] / wall:,.0f} entities/s); "
          f"longest transaction {longest[0] * 1000:.0f} ms (batch {args.batch:,} documents)")


if __name__ == "__main__":
    main()
