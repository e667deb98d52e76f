"""End to end with the real model path: a tiny random BERT-CRF, quantized to the ONNX INT8 artifact
workers serve, loaded in real workers."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from producer.service import submit_corpus
from storage.broker.redis_server import RedisServer
from storage.core.settings import Settings
from tests.helpers.jobs import stored_entities, wait_terminal, write_corpus
from tests.helpers.processes import WorkerPool
from tests.helpers.tiny_model import build_tiny_model

pytestmark = pytest.mark.integration


def test_worker_rows_equal_in_process_tagger(tmp_path: Path, redis_server: RedisServer,
                                             workers: WorkerPool) -> None:
    # Given a tiny model that knows the corpus characters, quantized, and a worker loading it
    docs = write_corpus(tmp_path / "corpus.jsonl", n=30, long_chars=6000)
    from worker.model.artifact import quantize

    model_dir = quantize(build_tiny_model(tmp_path / "tiny", chars="".join(d["text"] for d in docs)),
                         tmp_path / "tiny-onnx")
    # One document per batch: dynamic INT8 quantizes activations per forward batch, so the
    # in-process reference below must see the same batches (one document at a time).
    settings = Settings(data_dir=tmp_path / "data", redis_url=redis_server.url, model=str(model_dir),
                        queue=f"q-{uuid.uuid4().hex[:8]}", batch_docs=1, high_water=4, overlap=16)
    workers.start(settings, timeout=120)

    # When the corpus is tagged by the worker
    result = submit_corpus(settings, tmp_path / "corpus.jsonl")
    status = wait_terminal(settings, result.job_id, timeout=240)

    # Then the stored rows equal the same tagger run in-process
    assert (status["state"], status["done"]) == ("succeeded", len(docs))
    from worker.pipeline import annotate_text
    from worker.tagger.loading import load_tagger

    tagger = load_tagger(model_dir, overlap=16)
    expected = {(d["id"], e.start, e.end, e.label, e.text)
                for d in docs for e in annotate_text(d["text"], tagger, settings, folded=True)}
    got = stored_entities(settings, result.job_id)
    assert expected, "the tiny model should tag something"
    assert set(got) == expected and max(got.values()) == 1
    texts = {d["id"]: d["text"] for d in docs}
    assert all(texts[doc][s:e] == t for doc, s, e, _, t in got)
