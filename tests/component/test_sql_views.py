"""The read-only SQL views (docs/sql.md) on SQLite and PostgreSQL: their columns are a stable
interface, and what they show is what the API shows; the example queries of docs/sql.md run."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import text

from producer.service import find_entities, job_options, submit_corpus
from storage.core.settings import Settings
from storage.sql.db import get_database
from tests.api.conftest import work

ROOT = Path(__file__).resolve().parents[2]
ENTITY_COLUMNS = ["job_id", "doc_id", "start", "end", "label", "text", "score", "source", "model", "model_hash",
                  "dictionary", "entity_id"]
DOCUMENT_COLUMNS = ["job_id", "doc_id", "line", "state", "reason", "error", "attempts", "n_chars", "text",
                    "document_id"]


def test_views_have_stable_columns_and_show_what_the_api_shows(settings: Settings) -> None:
    job = submit_corpus(settings, [{"id": "a", "text": "张伟在北京。"}, {"id": "b", "text": "王芳去上海的复旦大学。"}],
                        options=job_options(settings)).job_id
    work(settings, job)
    db = get_database(settings)
    with db.read() as conn:
        ents = conn.execute(text("SELECT * FROM shiti_entities WHERE job_id = :j ORDER BY entity_id"), {"j": job})
        assert list(ents.keys()) == ENTITY_COLUMNS
        rows = [dict(r._mapping) for r in ents]
        docs = conn.execute(text("SELECT * FROM shiti_documents WHERE job_id = :j ORDER BY document_id"), {"j": job})
        assert list(docs.keys()) == DOCUMENT_COLUMNS
        states = [(r.doc_id, r.state) for r in docs]
    api = find_entities(settings, job)["items"]
    assert [(r["doc_id"], r["start"], r["end"], r["label"], r["text"], r["source"]) for r in rows] == [
        (e["doc_id"], e["start"], e["end"], e["label"], e["text"], e["source"]) for e in api]
    assert states == [("a", "done"), ("b", "done")]


def test_the_example_queries_of_the_docs_run(settings: Settings) -> None:
    job = submit_corpus(settings, [{"id": "a", "text": "张伟在北京见到王芳。"}], options=job_options(settings)).job_id
    work(settings, job)
    queries = re.findall(r"```sql\n(.*?)```", (ROOT / "docs" / "sql.md").read_text(encoding="utf-8"), re.S)
    assert len(queries) >= 3
    with get_database(settings).read() as conn:
        for q in queries:
            got = conn.execute(text(q.replace("JOB", job).strip().rstrip(";"))).fetchall()
            assert got or "<> 'done'" in q, q  # every document of this job is done
