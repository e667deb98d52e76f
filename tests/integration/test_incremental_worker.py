"""Incremental re-submits through a real worker and the shipped model: unchanged documents are
reused (the worker tags only the edited and new ones) and the rows equal a fresh run's."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from producer.service import export_entities, job_options, submit_corpus
from storage.broker.redis_server import RedisServer
from storage.core.settings import DEFAULT_MODEL, Settings
from tests.helpers.jobs import wait_terminal, write_corpus
from tests.helpers.processes import WorkerPool

pytestmark = pytest.mark.integration


def test_incremental_resubmit_tags_only_what_changed(tmp_path: Path, redis_server: RedisServer,
                                                     workers: WorkerPool) -> None:
    docs = write_corpus(tmp_path / "corpus.jsonl", n=30, long_chars=3000)
    settings = Settings(data_dir=tmp_path / "data", redis_url=redis_server.url, model=str(DEFAULT_MODEL),
                        queue=f"q-{uuid.uuid4().hex[:8]}", batch_docs=8)
    workers.start(settings, timeout=120)
    first = submit_corpus(settings, docs).job_id
    assert wait_terminal(settings, first, timeout=300)["state"] == "succeeded"

    night2 = [dict(d) for d in docs]
    for d in night2[:3]:
        d["text"] += "上海的李娜也来了。"
    night2.append({"id": "added", "text": "成都的陈静在阿里巴巴工作。"})
    inc = submit_corpus(settings, night2, options=job_options(settings, incremental=True))
    assert inc.reused == len(docs) - 3
    status = wait_terminal(settings, inc.job_id, timeout=300)
    assert (status["state"], status["reused"], status["done"]) == ("succeeded", len(docs) - 3, len(night2))
    fresh = submit_corpus(settings, night2).job_id
    assert wait_terminal(settings, fresh, timeout=300)["state"] == "succeeded"

    def rows(job: str) -> dict[str, list]:
        return {r["doc_id"]: r["entities"] for r in export_entities(settings, job)}

    assert rows(inc.job_id) == rows(fresh)
    assert any(rows(fresh)["added"])


def test_texts_repeated_within_a_corpus_are_tagged_once_by_real_workers(tmp_path: Path, redis_server: RedisServer,
                                                                        workers: WorkerPool) -> None:
    docs = write_corpus(tmp_path / "corpus.jsonl", n=12, long_chars=2000)
    # Every text three times over, interleaved, so copies land in the same and in other batches
    corpus = [{"id": f"{d['id']}#{k}", "text": d["text"]} for k in range(3) for d in docs]
    settings = Settings(data_dir=tmp_path / "data", redis_url=redis_server.url, model=str(DEFAULT_MODEL),
                        queue=f"q-{uuid.uuid4().hex[:8]}", batch_docs=4)
    workers.start(settings, timeout=120)
    inc = submit_corpus(settings, corpus, options=job_options(settings, incremental=True)).job_id
    status = wait_terminal(settings, inc, timeout=300)
    assert (status["state"], status["done"], status["reused"]) == ("succeeded", len(corpus), 2 * len(docs))
    fresh = submit_corpus(settings, corpus).job_id
    assert wait_terminal(settings, fresh, timeout=300)["reused"] == 0

    def rows(job: str) -> dict[str, list]:
        return {r["doc_id"]: [(e["start"], e["end"], e["label"], e["text"]) for e in r["entities"]]
                for r in export_entities(settings, job)}

    assert rows(inc) == rows(fresh)
