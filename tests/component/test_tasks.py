"""Task bodies called directly (no Celery) on a real database with the fake tagger."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import select

from producer.service import find_entities, job_status, submit_corpus
from storage.sql import queries, repo
from storage.sql.db import Database
from storage.sql.schema import document, entity, job
from storage.core.settings import Settings
from tests.helpers.fake_tagger import FakeTagger
from worker.batch import run_batch

TEXTS = ["新华社北京电，张伟在清华大学演讲。", "王芳从上海来到杭州。", "今天天气很好。", "李娜加入华为公司[[RAISE]]",
         "", "中国银行在深圳开业。"]


def snapshot(db: Database) -> dict[str, Any]:
    with db.read() as conn:
        ents = sorted(tuple(r) for r in conn.execute(
            select(entity.c.document_id, entity.c.start, entity.c.end, entity.c.label, entity.c.text)))
        docs = sorted(tuple(r) for r in conn.execute(select(document.c.id, document.c.status, document.c.reason)))
        jobs = sorted(tuple(r) for r in conn.execute(
            select(job.c.id, job.c.status, job.c.done, job.c.failed, job.c.chars_done)))
    return {"entities": ents, "documents": docs, "jobs": jobs}


def submit(settings: Settings) -> tuple[str, list[int]]:
    result = submit_corpus(settings, [{"id": f"d{i}", "text": t} for i, t in enumerate(TEXTS)])
    assert not result.dispatched  # no broker in component tests: documents stay pending
    db = repo_db(settings)
    with db.read() as conn:
        ids = list(conn.execute(select(document.c.id).where(document.c.job_id == result.job_id)
                                .order_by(document.c.id)).scalars())
    return result.job_id, ids


def repo_db(settings: Settings) -> Database:
    from storage.sql.db import get_database

    return get_database(settings)


def test_batch_isolates_failures_and_matches_the_tagger(settings: Settings, db: Database) -> None:
    job_id, ids = submit(settings)
    stats = run_batch(settings, job_id=job_id, doc_ids=ids, tagger=FakeTagger(), topup=False)
    assert stats == {"claimed": 5, "done": 4, "failed": 1, "fenced": 0}  # the empty doc was done at ingest
    status = job_status(settings, job_id)
    assert (status["state"], status["done"], status["failed"], status["pending"]) == ("partially_failed", 5, 1, 0)
    assert status["failures"][0]["doc_id"] == "d3" and "RuntimeError" in status["failures"][0]["error"]
    expected = FakeTagger().annotate([t for t in TEXTS if "[[" not in t])
    got = {}
    for i, text in enumerate(TEXTS):
        if "[[" in text:
            continue
        items = find_entities(settings, job_id, doc=f"d{i}")["items"]
        got[text] = [(e["start"], e["end"], e["label"], e["text"]) for e in items]
        assert all(text[e["start"]:e["end"]] == e["text"] for e in items)
    assert list(got.values()) == [[(e.start, e.end, e.label, e.text) for e in es] for es in expected]
    assert repo.recount(db, job_id) == {k: queries.get_job(db, job_id)[k] for k in
                                        ("total", "done", "failed", "cancelled", "chars_total", "chars_done")}


def test_running_a_batch_twice_sequentially_changes_nothing(settings: Settings, db: Database) -> None:
    job_id, ids = submit(settings)
    run_batch(settings, job_id=job_id, doc_ids=ids, tagger=FakeTagger(), topup=False)
    before = snapshot(db)
    again = run_batch(settings, job_id=job_id, doc_ids=ids, tagger=FakeTagger(), topup=False)
    assert again["claimed"] == 0 and snapshot(db) == before


def test_running_a_batch_twice_concurrently_equals_once(settings: Settings, db: Database, tmp_path) -> None:
    # Reference: one run on its own database.
    ref_settings = Settings(data_dir=tmp_path / "ref", model=settings.model)
    ref_job, ref_ids = submit(ref_settings)
    run_batch(ref_settings, job_id=ref_job, doc_ids=ref_ids, tagger=FakeTagger(), topup=False)
    ref = {k: v for k, v in snapshot(repo_db(ref_settings)).items() if k != "jobs"}

    job_id, ids = submit(settings)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            run_batch(settings, job_id=job_id, doc_ids=ids, tagger=FakeTagger(delay=0.01), topup=False)
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    snap = snapshot(db)
    assert {k: v for k, v in snap.items() if k != "jobs"} == ref
    assert snap["jobs"][0][1:] == ("partially_failed", 5, 1, sum(len(t) for t in TEXTS if "[[" not in t))
