"""Pause and resume under a running job, with the worker SIGKILLed while the job is paused:
nothing new starts while paused, running documents finish, nothing is lost or duplicated, and
the resumed job ends with every document once and the reference entities. And bulk retry by
failure reason."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from producer.service import job_status, pause, retry_failed, submit_corpus
from storage.broker.redis_server import RedisServer
from storage.core.errors import InvalidTransition, PermanentError
from storage.core.settings import Settings
from tests.helpers.jobs import stored_entities, wait_terminal
from tests.helpers.processes import WorkerPool
from tests.reliability.helpers import doc_rows, make_texts, reference_entities, wait_until

pytestmark = pytest.mark.integration
SLOW_MODEL = "py:tests.helpers.fake_tagger:make_redelivery_tagger"  # 0.3 s per document


def test_pause_kill_resume_loses_and_duplicates_nothing(tmp_path: Path, redis_server: RedisServer,
                                                        workers: WorkerPool) -> None:
    # Given a worker on a 0.3 s-per-document model, small batches, and a 60-document job running
    settings = Settings(data_dir=tmp_path / "data", redis_url=redis_server.url, model=SLOW_MODEL,
                        queue=f"q-{uuid.uuid4().hex[:8]}", batch_docs=5, high_water=2)
    worker = workers.start(settings)
    docs = make_texts(60, seed=5)
    job_id = submit_corpus(settings, [dict(d) for d in docs]).job_id
    wait_until(lambda: job_status(settings, job_id)["done"] >= 5, timeout=60, what="the job under way")

    # When it is paused
    assert pause(settings, job_id=job_id) == [job_id]
    assert job_status(settings, job_id)["paused"] is True
    # Then what was running finishes, the batches already queued go back to pending, and nothing
    # new starts
    wait_until(lambda: all(r["status"] in ("done", "pending") for r in doc_rows(settings, job_id)), timeout=60,
               what="the running and queued batches settled")
    frozen = job_status(settings, job_id)["done"]
    time.sleep(2.5)
    assert job_status(settings, job_id)["done"] == frozen < 60
    assert job_status(settings, job_id)["state"] == "running"

    # When the worker is killed while the job is paused, a new one starts, and the job is resumed
    os.killpg(worker.pid, signal.SIGKILL)
    worker.proc.wait(timeout=10)
    workers.start(settings)
    time.sleep(1.5)
    assert job_status(settings, job_id)["done"] == frozen  # still paused: the new worker waits too
    assert pause(settings, job_id=job_id, paused=False) == [job_id]

    # Then the job ends with every document once and exactly the reference entities
    status = wait_terminal(settings, job_id, timeout=120)
    assert (status["state"], status["done"], status["paused"]) == ("succeeded", 60, False)
    assert stored_entities(settings, job_id) == reference_entities(docs)
    with pytest.raises(InvalidTransition):
        pause(settings, job_id=job_id)


def test_retry_by_reason_requeues_only_those(tmp_path: Path, redis_server: RedisServer, workers: WorkerPool) -> None:
    settings = Settings(data_dir=tmp_path / "data", redis_url=redis_server.url,
                        model="py:tests.helpers.fake_tagger:make_tagger", queue=f"q-{uuid.uuid4().hex[:8]}",
                        doc_deadline_base=0.5, doc_deadline_per_10k=0.0)
    workers.start(settings)
    job_id = submit_corpus(settings, [{"id": "raise", "text": "张伟[[RAISE]]"}, {"id": "slow", "text": "[[SLEEP]]"},
                                      {"id": "ok", "text": "北京"}]).job_id
    status = wait_terminal(settings, job_id, timeout=60)
    reasons = {f["doc_id"]: f["reason"] for f in status["failures"]}
    assert reasons == {"raise": "error", "slow": "timeout"}
    with pytest.raises(PermanentError, match="reason must be one of"):
        retry_failed(settings, job_id, reason="surrogate")
    assert retry_failed(settings, job_id, reason="timeout")["requeued"] == 1
    status = wait_terminal(settings, job_id, timeout=60)
    assert {f["doc_id"]: f["reason"] for f in status["failures"]} == reasons  # it timed out again, alone
