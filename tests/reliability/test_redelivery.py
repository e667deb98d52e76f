"""Redelivery after a crash, measured: a killed pool child's batch comes back within seconds
(``task_reject_on_worker_lost``); a whole killed worker's batch after the visibility timeout."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from producer.service import submit_corpus
from storage.broker.redis_server import RedisServer
from tests.helpers.jobs import wait_terminal
from tests.helpers.processes import WorkerPool
from tests.reliability.helpers import ARTIFACTS, doc_rows, duplicate_rows, make_texts, short_settings, wait_until

pytestmark = pytest.mark.integration

SLOW_MODEL = "py:tests.helpers.fake_tagger:make_redelivery_tagger"


def _in_flight(settings, job_id: str, n: int) -> bool:  # type: ignore[no-untyped-def]
    rows = doc_rows(settings, job_id)
    return sum(r["status"] == "processing" for r in rows) == n


def _rerun_at(settings, job_id: str) -> float | None:  # type: ignore[no-untyped-def]
    """Wall time of the first claim of a second attempt, if any."""
    times = [r["updated_at"] for r in doc_rows(settings, job_id) if r["attempts"] >= 2]
    return min(times) if times else None


def test_child_death_and_whole_worker_death_are_redelivered(tmp_path: Path, redis_server: RedisServer,
                                                             workers: WorkerPool) -> None:
    # Given one worker whose model takes 0.3 s per document, the reconciler off (so only
    # Celery redelivers), lease 12 s < visibility timeout 15 s
    settings = short_settings(tmp_path, redis_server, model=SLOW_MODEL, reconcile_interval=0,
                              visibility_timeout=15, lease_seconds=12,
                              unacked_mutex_expire=5)
    worker = workers.start(settings)
    docs = make_texts(10)

    # When the pool child is SIGKILLed while its 10-document batch is in flight
    job1 = submit_corpus(settings, [dict(d) for d in docs]).job_id
    wait_until(lambda: _in_flight(settings, job1, 10), timeout=30, what="batch in flight")
    time.sleep(0.5)
    (child,) = worker.children()
    os.kill(child, signal.SIGKILL)
    killed = time.time()
    wait_until(lambda: _rerun_at(settings, job1) is not None, timeout=20, what="child-death rerun")
    child_recovery = _rerun_at(settings, job1) - killed  # type: ignore[operator]

    # Then the same batch runs again within seconds and completes with one attempt more
    status = wait_terminal(settings, job1, timeout=60)
    assert (status["state"], status["done"]) == ("succeeded", 10)
    assert child_recovery < 5.0
    assert {r["attempts"] for r in doc_rows(settings, job1)} == {2}
    assert duplicate_rows(settings, job1) == 0

    # When the whole worker (parent and child) is SIGKILLed mid-batch and restarted at once
    job2 = submit_corpus(settings, [dict(d, id=d["id"] + "-b") for d in docs]).job_id
    wait_until(lambda: _in_flight(settings, job2, 10), timeout=30, what="batch in flight")
    delivered = min(r["updated_at"] for r in doc_rows(settings, job2))
    time.sleep(0.5)
    worker.kill()
    killed = time.time()
    workers.start(settings)
    wait_until(lambda: _rerun_at(settings, job2) is not None, timeout=45, what="whole-worker rerun")
    rerun = _rerun_at(settings, job2)
    assert rerun is not None

    # Then the batch comes back only after the visibility timeout (+ one 1 s restore sweep)
    status = wait_terminal(settings, job2, timeout=60)
    assert (status["state"], status["done"]) == ("succeeded", 10)
    vt = settings.visibility_timeout
    assert vt - 1 <= rerun - delivered <= vt + 8
    assert duplicate_rows(settings, job2) == 0

    result = {"child_death_rerun_s": round(child_recovery, 2),
              "whole_worker_rerun_after_kill_s": round(rerun - killed, 2),
              "whole_worker_rerun_after_delivery_s": round(rerun - delivered, 2), "visibility_timeout_s": vt}
    print("redelivery:", json.dumps(result))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "redelivery.json").write_text(json.dumps(result, indent=2) + "\n")
