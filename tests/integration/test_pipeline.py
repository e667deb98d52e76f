"""End to end on real parts: embedded redis-server, `celery worker` subprocesses, SQLite file."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from producer.service import submit_corpus
from storage.sql import repo
from storage.sql.db import get_database
from storage.broker.dispatch import broker, plan_batches
from storage.broker.queue import BatchMessage, publish, queue_for
from storage.broker.redis_server import RedisServer
from storage.sql.schema import document
from storage.core.settings import Settings
from tests.conftest import FAKE_MODEL
from tests.helpers.fake_tagger import FakeTagger
from tests.helpers.jobs import stored_entities, stored_rows, wait_drained, wait_terminal, write_corpus
from tests.helpers.processes import WorkerPool

pytestmark = pytest.mark.integration


def pipeline_settings(tmp_path: Path, server: RedisServer, **kw: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", redis_url=server.url, model=FAKE_MODEL,
                    queue=f"q-{uuid.uuid4().hex[:8]}", batch_docs=16, batch_chars=20_000, high_water=3,
                    unacked_restore_interval=1, **kw)  # type: ignore[arg-type]


def test_submit_tag_query_and_rerun(tmp_path: Path, redis_server: RedisServer, workers: WorkerPool) -> None:
    # Given two real workers on the fake tagger and a 121-document corpus with a 6,000-char one
    settings = pipeline_settings(tmp_path, redis_server)
    docs = write_corpus(tmp_path / "corpus.jsonl", n=120, long_chars=6000)
    for _ in range(2):
        workers.start(settings)

    # When it is submitted and tagged
    result = submit_corpus(settings, tmp_path / "corpus.jsonl")
    status = wait_terminal(settings, result.job_id, timeout=120)

    # Then every document is terminal and the rows equal in-process annotation
    assert (status["state"], status["total"], status["done"], status["pending"]) == ("succeeded", 121, 121, 0)
    expected = {(d["id"], e.start, e.end, e.label, e.text)
                for d, found in zip(docs, FakeTagger().annotate([d["text"] for d in docs])) for e in found}
    got = stored_entities(settings, result.job_id)
    assert set(got) == expected and max(got.values()) == 1
    assert any(doc == "long-6000" and start > 5900 for doc, start, *_ in got)
    texts = {d["id"]: d["text"] for d in docs}
    assert all(texts[doc][s:e] == t for doc, s, e, _, t in got)
    db = get_database(settings)
    counters = {k: status[k] for k in ("total", "done", "failed", "cancelled", "chars_total", "chars_done")}
    assert repo.recount(db, result.job_id) == counters

    # When the job's tasks run again (duplicate deliveries), rows are unchanged
    before = stored_rows(settings, result.job_id)
    with db.read() as conn:
        pending = [(int(i), int(n)) for i, n in conn.execute(
            select(document.c.id, document.c.n_chars).where(document.c.job_id == result.job_id)
            .order_by(document.c.id))]
    app, _ = broker(settings)
    logs_before = sum(w.log.read_text().count("succeeded in") for w in workers.started)
    batches = plan_batches(pending, max_chars=settings.batch_chars, max_docs=settings.batch_docs)
    for batch in batches:
        publish(app, BatchMessage(result.job_id, tuple(batch)), queue=queue_for(settings, settings.model_name))
    wait_drained(settings, timeout=60)
    logs_after = sum(w.log.read_text().count("succeeded in") for w in workers.started)
    assert logs_after - logs_before == len(batches)
    after = stored_rows(settings, result.job_id)
    assert after == before and after["duplicates"] == 0


def test_submit_without_broker_is_sent_by_the_next_worker(tmp_path: Path, redis_server: RedisServer,
                                                          workers: WorkerPool) -> None:
    # Given a job stored while the broker was unreachable
    settings = pipeline_settings(tmp_path, redis_server)
    offline = settings.replace(redis_url="redis://127.0.0.1:1/0")
    result = submit_corpus(offline, [{"id": str(i), "text": "张伟在北京"} for i in range(20)])
    assert not result.dispatched
    # When a worker starts, its startup reconcile sends the pending documents
    workers.start(settings)
    status = wait_terminal(settings, result.job_id, timeout=60)
    assert (status["state"], status["done"]) == ("succeeded", 20)
