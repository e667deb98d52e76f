"""A dictionary through real workers and the shipped model: the rows a worker stores are the
in-process tagger's with the dictionary applied, each with its source, and the job's provenance
names the dictionary version the worker applied."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from producer.dictionaries import create_dictionary
from producer.service import export_entities, job_options, submit_corpus
from storage.broker.redis_server import RedisServer
from storage.core.lexicon import parse
from storage.core.settings import DEFAULT_MODEL, Settings
from tests.helpers.jobs import wait_terminal, write_corpus
from tests.helpers.processes import WorkerPool

pytestmark = pytest.mark.integration

ENTRIES = "瑞丰数码科技\tORG\n小明哥\tPER\n北京\tLOC\tblock\n新华社\t*\tblock\n"


def test_worker_applies_the_jobs_dictionary_version(tmp_path: Path, redis_server: RedisServer,
                                                    workers: WorkerPool) -> None:
    # Given news documents, one long one, and documents holding the forced terms
    docs = write_corpus(tmp_path / "corpus.jsonl", n=20, long_chars=3000)
    extra = [{"id": "x1", "text": "小明哥今天去了瑞丰数码科技，北京的新华社记者也在。"},
             {"id": "x2", "text": "瑞丰数码科技" * 40}]
    settings = Settings(data_dir=tmp_path / "data", redis_url=redis_server.url, model=str(DEFAULT_MODEL),
                        queue=f"q-{uuid.uuid4().hex[:8]}", batch_docs=8)
    made = create_dictionary(settings, "shop", ENTRIES)
    workers.start(settings, timeout=120)

    # When the corpus is tagged by a worker with the dictionary
    job = submit_corpus(settings, docs + extra, options=job_options(settings, dictionary="shop")).job_id
    status = wait_terminal(settings, job, timeout=300)
    assert (status["state"], status["done"]) == ("succeeded", len(docs) + 2)
    assert (status["dictionary"], status["dictionary_hash"]) == ("shop@1", made["content_hash"])

    # Then the stored rows are the in-process tagger's with the same dictionary, sources included
    from worker.pipeline import annotate_text
    from worker.tagger.lexicon import Lexicon
    from worker.tagger.loading import load_tagger
    from storage.core.fold import fold

    tagger = load_tagger(DEFAULT_MODEL)
    lexicon = Lexicon.build(parse(ENTRIES), normalize=fold)
    want = {d["id"]: [(e.start, e.end, e.label, e.text, e.source)
                      for e in annotate_text(d["text"], tagger, settings, folded=True, lexicon=lexicon)]
            for d in docs + extra}
    got = {r["doc_id"]: [(e["start"], e["end"], e["label"], e["text"], e["source"]) for e in r["entities"]]
           for r in export_entities(settings, job)}
    assert got == want
    x1 = {t: src for _, _, _, t, src in got["x1"]}
    assert x1["小明哥"] in ("dict", "both") and x1["瑞丰数码科技"] in ("dict", "both")
    assert [(s, e) for s, e, *_ in got["x2"]] == [(6 * i, 6 * i + 6) for i in range(40)]
    assert not any(t in ("北京", "新华社") for rows in got.values() for *_, t, _ in rows)
