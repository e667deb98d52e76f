"""The example queries of docs/sql.md at scale, on SQLite and PostgreSQL, through the read-only views.

A finished job of ``--docs`` documents and ``--entities`` entity rows is bulk loaded (the corpus
view bench's loader: names drawn Zipf-like from ~60k type/text pairs), then every ```sql block of
docs/sql.md runs as written, with ``JOB`` the job's id and ``doc_id = 'a'`` a document half-way
through it: wall time (median of ``--runs`` after one warm-up) and rows returned.

Usage: ``python -W ignore bench/sql_views.py [--docs 100000] [--entities 1000000] [--db sqlite,postgres]``
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import REPO, base_parser, cpu_note, median, table

sys.path.insert(0, str(REPO))


def doc_queries() -> list[tuple[str, str]]:
    """(what it asks, SQL) for each example of docs/sql.md, in its order."""
    text = (REPO / "docs" / "sql.md").read_text(encoding="utf-8")
    out = []
    for m in re.finditer(r"([^\n]+):\n\n```sql\n(.*?)```", text, re.S):
        out.append((m.group(1).strip().rstrip(":"), m.group(2).strip()))
    return out


def run(name: str, args: Any) -> list[list[Any]]:
    from corpus_view import load
    from scale_sql import backend
    from sqlalchemy import text

    from storage.core.settings import Settings
    from storage.sql.db import get_database

    with tempfile.TemporaryDirectory(prefix="shiti-sql-views-") as tmp, backend(name, Path(tmp)) as url:
        db = get_database(Settings(data_dir=Path(tmp), database_url=url))
        job_id, secs = load(db, args.docs, args.entities)
        print(f"[{name}] loaded {args.docs:,} documents, {args.entities:,} entities in {secs:.0f} s", flush=True)
        rows = []
        for what, sql in doc_queries():
            sql = sql.replace("'JOB'", f"'{job_id}'").replace("doc_id = 'a'", f"doc_id = 'd{args.docs // 2}'")
            times, found = [], 0
            for i in range(args.runs + 1):
                t0 = time.perf_counter()
                with db.read() as conn:
                    found = len(conn.execute(text(sql)).all())
                if i:  # the first run warms the caches
                    times.append(time.perf_counter() - t0)
            rows.append([name, what[:60], f"{median(times) * 1000:,.1f}", found])
            print(f"[{name}] {what[:60]}: {median(times) * 1000:,.1f} ms, {found} rows", flush=True)
        return rows


def main() -> None:
    ap = base_parser(__doc__)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--entities", type=int, default=1_000_000)
    ap.add_argument("--db", default="sqlite,postgres")
    ap.set_defaults(runs=3)
    args = ap.parse_args()
    print(cpu_note(), flush=True)
    out: list[list[Any]] = []
    for name in args.db.split(","):
        out += run(name, args)
    print(table(["database", "docs/sql.md query", f"ms (median of {args.runs})", "rows"], out))


if __name__ == "__main__":
    main()
