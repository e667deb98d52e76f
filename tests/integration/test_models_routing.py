"""Models per job with real workers: each model's batches reach only its own workers, a job whose
model no worker serves says so, a misrouted batch is refused, and rerun + diff compare two models."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import redis

from producer.service import diff_jobs, job_options, job_status, rerun_job, submit_corpus
from storage.sql import queries
from storage.sql.db import get_database
from storage.broker.dispatch import broker
from storage.catalog import resolve
from storage.broker.queue import BatchMessage, publish, queue_for
from storage.broker.redis_server import RedisServer
from storage.core.settings import Settings
from tests.helpers.jobs import stored_entities, wait_terminal, write_corpus
from tests.helpers.model_variants import copy_shipped, without_org
from tests.helpers.processes import WorkerPool

pytestmark = pytest.mark.integration


def _in_process(settings: Settings, model: str, texts: dict[str, str]) -> set[tuple[str, int, int, str, str]]:
    from storage.core.fold import fold
    from worker.tagger.loading import load_tagger

    tagger = load_tagger(resolve(settings, model).path)
    ids = list(texts)  # jobs fold Traditional characters before the model by default
    return {(i, e.start, e.end, e.label, texts[i][e.start:e.end])
            for i, found in zip(ids, tagger.annotate([fold(texts[i]) for i in ids])) for e in found}


def test_each_models_jobs_go_only_to_its_workers(tmp_path: Path, redis_server: RedisServer, workers: WorkerPool) -> None:
    # Given two models in one models directory, and one worker serving the first only
    models = tmp_path / "models"
    copy_shipped(models / "zh")
    without_org(models / "zh-no-org")
    settings = Settings(data_dir=tmp_path / "data", redis_url=redis_server.url, models_dir=models, model="zh",
                        queue=f"q{uuid.uuid4().hex[:8]}", batch_docs=8)
    docs = write_corpus(tmp_path / "corpus.jsonl", n=40)
    texts = {d["id"]: d["text"] for d in docs}
    workers.start(settings, name="zh@a", timeout=120)

    # When a job is submitted for each model
    job_zh = submit_corpus(settings, tmp_path / "corpus.jsonl").job_id
    job_no = submit_corpus(settings, tmp_path / "corpus.jsonl",
                           options=job_options(settings, model="zh-no-org")).job_id
    # Then the first finishes, the second waits and says for what
    assert wait_terminal(settings, job_zh, timeout=180)["state"] == "succeeded"
    waiting = job_status(settings, job_no)
    assert (waiting["state"], waiting["done"], waiting["workers"]) == ("submitted", 0, 0)
    assert waiting["waiting_for"] == "a worker serving zh-no-org"
    assert job_status(settings, job_zh)["model_hash"] == resolve(settings, "zh").content_hash

    # When a batch of the second job is pushed into the first model's queue by mistake
    app, _ = broker(settings)
    doc_ids = [i for i, _ in queries_pending(settings, job_no)]
    publish(app, BatchMessage(job_no, tuple(doc_ids[:3])), queue=queue_for(settings, "zh"))
    log = workers.started[0].log
    t0 = time.monotonic()
    while "this worker serves sha256" not in log.read_text() and time.monotonic() - t0 < 60:
        time.sleep(0.2)
    # Then that worker refuses it: nothing of it is tagged by the wrong model
    assert "this worker serves sha256" in log.read_text()
    assert job_status(settings, job_no)["done"] == 0

    # When a worker of the second model comes up, its job completes, by that model alone
    workers.start(settings.replace(model="zh-no-org"), name="no-org@b", timeout=120)
    final = wait_terminal(settings, job_no, timeout=180)
    assert (final["state"], final["done"], final["model"]) == ("succeeded", len(docs), "zh-no-org")
    got_zh, got_no = set(stored_entities(settings, job_zh)), set(stored_entities(settings, job_no))
    assert got_zh == _in_process(settings, "zh", texts)
    assert got_no == _in_process(settings, "zh-no-org", texts)
    assert any(e[3] == "ORG" for e in got_zh) and not any(e[3] == "ORG" for e in got_no)
    client = redis.Redis.from_url(redis_server.url)
    assert client.llen(queue_for(settings, "zh")) == 0

    # And a rerun of the first job by the second model diffs to exactly the ORG entities it lost
    rerun = rerun_job(settings, job_zh, options=job_options(settings, model="zh-no-org")).job_id
    assert wait_terminal(settings, rerun, timeout=180)["state"] == "succeeded"
    d = diff_jobs(settings, job_zh, rerun, limit=10_000)
    lost = {(e["doc_id"], e["start"], e["end"], e["label"]) for e in d["only_a"]} | {
        (e["doc_id"], e["start"], e["end"], e["label"]) for e in d["changed"]}
    assert {(i, s, e, lab) for i, s, e, lab, _ in got_zh - got_no} == lost
    assert d["counts"]["only_a"] + d["counts"]["changed"] == len(got_zh - got_no)
    assert d["counts"]["only_b"] + d["counts"]["changed"] == len(got_no - got_zh)


def queries_pending(settings: Settings, job_id: str) -> list[tuple[int, int]]:
    """Documents of a job that no worker has finished (queued or pending)."""
    from sqlalchemy import select

    from storage.sql.schema import document

    with get_database(settings).read() as conn:
        return [(int(i), int(n)) for i, n in conn.execute(
            select(document.c.id, document.c.n_chars).where(document.c.job_id == job_id).order_by(document.c.id))]


def test_an_unknown_model_is_refused_with_the_known_ones_and_nothing_stored(tmp_path: Path,
                                                                            redis_server: RedisServer) -> None:
    models = tmp_path / "models"
    copy_shipped(models / "zh")
    settings = Settings(data_dir=tmp_path / "data", redis_url=redis_server.url, models_dir=models, model="zh",
                        queue=f"q{uuid.uuid4().hex[:8]}")
    with pytest.raises(Exception, match=r"unknown model 'zh-typo'; known: zh"):
        job_options(settings, model="zh-typo")
    assert queries.list_jobs(get_database(settings))[0] == []
