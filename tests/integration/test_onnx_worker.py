"""The shipped ONNX model in real workers: no torch in the pool child, and the entity table does
not depend on how the corpus is cut into queued batches."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from producer.service import submit_corpus
from storage.broker.redis_server import RedisServer
from storage.core.settings import DEFAULT_MODEL, Settings
from tests.helpers.jobs import stored_entities, wait_terminal, write_corpus
from tests.helpers.processes import WorkerPool

pytestmark = pytest.mark.integration


def _mapped_libraries(pid: int) -> set[str]:
    return {line.split()[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines() if ".so" in line}


def test_batch_size_does_not_change_entities_and_the_child_never_loads_torch(
        tmp_path: Path, redis_server: RedisServer, workers: WorkerPool) -> None:
    # Given one corpus (news plus a 6,000-character document) and the shipped model
    write_corpus(tmp_path / "corpus.jsonl", n=60, long_chars=6000)
    rows = []
    for batch_docs in (1024, 7):
        settings = Settings(data_dir=tmp_path / f"data-{batch_docs}", redis_url=redis_server.url,
                            model=str(DEFAULT_MODEL), queue=f"q-{uuid.uuid4().hex[:8]}", batch_docs=batch_docs)
        worker = workers.start(settings, timeout=120)
        # When the corpus goes through the pipeline with this batch size
        job = submit_corpus(settings, tmp_path / "corpus.jsonl").job_id
        status = wait_terminal(settings, job, timeout=300)
        assert (status["state"], status["done"]) == ("succeeded", 61)
        rows.append(stored_entities(settings, job))
        # Then the pool child that tagged it has onnxruntime and never loaded torch
        libs = {lib for child in worker.children() for lib in _mapped_libraries(child)}
        assert any("onnxruntime" in lib for lib in libs), sorted(libs)[:20]
        assert not any("libtorch" in lib for lib in libs)
        worker.stop()
    # And both batchings stored exactly the same entity rows
    assert len(rows[0]) > 100 and rows[0] == rows[1]
