"""Graceful shutdown at default settings: SIGTERM mid-batch (``docker stop`` signals the worker
parent only; a supervisor may signal the whole group) saves the finished documents, gives the
rest back without costing an attempt, and the worker is gone well inside the compose file's
``stop_grace_period``. Another worker finishes the job with the reference entities."""

from __future__ import annotations

import json
import os
import re
import signal
import time
import uuid
from pathlib import Path

import pytest

from producer.service import submit_corpus
from storage.broker.redis_server import RedisServer
from storage.core.settings import Settings
from tests.helpers.jobs import stored_entities, wait_terminal
from tests.helpers.processes import WorkerPool
from tests.reliability.helpers import ARTIFACTS, doc_rows, make_texts, reference_entities, wait_until

pytestmark = pytest.mark.integration

SLOW_MODEL = "py:tests.helpers.fake_tagger:make_redelivery_tagger"  # 0.3 s per document
COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def _grace_period() -> float:
    match = re.search(r"stop_grace_period:\s*(\d+)s", COMPOSE.read_text())
    assert match, "docker-compose.yml sets no stop_grace_period for the worker"
    return float(match.group(1))


@pytest.mark.parametrize("target", ["parent", "group"])
def test_sigterm_mid_batch_saves_what_is_done_and_releases_the_rest(
        tmp_path: Path, redis_server: RedisServer, workers: WorkerPool, target: str) -> None:
    # Given one worker at default lease/heartbeat/visibility settings on a 0.3 s-per-document model,
    # and a 60-document job (one batch of about 18 s)
    settings = Settings(data_dir=tmp_path / "data", redis_url=redis_server.url, model=SLOW_MODEL,
                        queue=f"q-{uuid.uuid4().hex[:8]}")
    worker = workers.start(settings)
    docs = make_texts(60, seed=3)
    job_id = submit_corpus(settings, [dict(d) for d in docs]).job_id
    wait_until(lambda: sum(r["status"] == "processing" for r in doc_rows(settings, job_id)) == 60,
               timeout=30, what="the batch in flight")
    time.sleep(3)

    # When SIGTERM reaches the worker (its parent only, as `docker stop` does, or its whole group)
    sent = time.monotonic()
    if target == "parent":
        os.kill(worker.pid, signal.SIGTERM)
    else:
        os.killpg(worker.pid, signal.SIGTERM)
    code = worker.proc.wait(timeout=_grace_period())
    exit_s = time.monotonic() - sent

    # Then it leaves within seconds: finished documents saved, the rest back in the queue (pending,
    # or queued again by the child's top-up) with no attempt spent
    rows = doc_rows(settings, job_id)
    states = {s: sum(r["status"] == s for r in rows) for s in ("done", "pending", "processing", "queued")}
    result = {"target": target, "exit_s": round(exit_s, 2), "exit_code": code, **states,
              "grace_period_s": _grace_period()}
    print("graceful shutdown:", json.dumps(result))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"graceful_shutdown_{target}.json").write_text(json.dumps(result, indent=2) + "\n")
    assert code == 0, worker.log.read_text()[-2000:]
    assert exit_s < 10, result
    assert states["done"] >= 5 and states["pending"] + states["queued"] >= 20, result
    assert states["processing"] == 0 and states["done"] + states["pending"] + states["queued"] == 60, result
    assert {r["attempts"] for r in rows if r["status"] != "done"} == {0}

    # And a new worker finishes the job: every document once, one attempt each, reference entities
    workers.start(settings)
    status = wait_terminal(settings, job_id, timeout=60)
    assert (status["state"], status["done"]) == ("succeeded", 60)
    assert {r["attempts"] for r in doc_rows(settings, job_id)} == {1}
    assert stored_entities(settings, job_id) == reference_entities(docs)
