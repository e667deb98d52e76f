"""The scale benchmarks run end to end at a small size on SQLite and PostgreSQL, so they keep
working between full-size runs: each loads its data, checks what it built (row counts, the corpus
view's counts against a direct COUNT) and prints its tables. Their figures are not asserted
(speed goals live in bench/, not in tests); their full-size results are in docs/cost-model.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.postgres import require_postgres

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def _bench(*args: str) -> str:
    run = subprocess.run([sys.executable, "-W", "ignore", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout


def test_scale_sql_at_a_small_size() -> None:
    require_postgres()
    out = _bench("bench/scale_sql.py", "--docs", "3000", "--entities", "30000", "--db", "sqlite,postgres",
                 "--pages", "2", "--dispatch-seconds", "10", "--export-seconds", "5", "--incremental-docs", "1000")
    for db in ("sqlite", "postgres"):
        assert f"entity queries [{db}], 30,000 rows" in out
        assert f"corpus view [{db}]: built" in out
        assert f"incremental [{db}] (goal >= 100k docs/s look-up): 1,000 documents, 1,000 donors found" in out
        assert f"export [{db}]" in out and "30,000 entities of 3,000 documents" in out


def test_corpus_view_bench_at_a_small_size() -> None:
    require_postgres()
    out = _bench("bench/corpus_view.py", "--docs", "3000", "--entities", "30000", "--db", "sqlite,postgres",
                 "--batches", "3")
    for db in ("sqlite", "postgres"):
        assert f"[{db}] build:" in out and f"[{db}] maintained instead:" in out
        rows = [line for line in out.splitlines() if line.startswith(db) and "documents mentioning #1" in line]
        assert len(rows) == 2  # the first page and a page half-way


def test_sql_views_bench_at_a_small_size() -> None:
    require_postgres()
    out = _bench("bench/sql_views.py", "--docs", "3000", "--entities", "30000", "--db", "sqlite,postgres",
                 "--runs", "1")
    for db in ("sqlite", "postgres"):
        rows = [line for line in out.splitlines() if line.startswith(db)]
        assert len(rows) == 4  # every example query of docs/sql.md ran
        assert [int(r.split()[-1]) for r in rows] == [20, 20, 10, 0]  # top 20, top 20 pairs, one doc, none failed
