"""The broker restarts mid-job (AOF on): workers reconnect and the job completes, nothing lost."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from producer.service import submit_corpus
from storage.broker.redis_server import free_port, ping, start_redis, stop_redis
from tests.helpers.jobs import stored_entities, wait_terminal
from tests.helpers.processes import WorkerPool
from tests.reliability.helpers import (
    ARTIFACTS, doc_rows, duplicate_rows, job_row, make_texts, reference_entities, short_settings, wait_until,
)

pytestmark = pytest.mark.integration

SLOW_MODEL = "py:tests.helpers.fake_tagger:make_slow_tagger"


def test_redis_restart_mid_job_loses_nothing(tmp_path: Path, workers: WorkerPool) -> None:
    # Given a dedicated redis-server (AOF on, fixed port and dir) and 2 workers on a 400-doc job
    port, rdir = free_port(), tmp_path / "redis"
    server = start_redis(rdir, port=port)
    try:
        settings = short_settings(tmp_path, server, model=SLOW_MODEL)
        for _ in range(2):
            workers.start(settings)
        docs = make_texts(400, seed=5)
        job_id = submit_corpus(settings, docs).job_id
        wait_until(lambda: job_row(settings, job_id)["done"] >= 60, timeout=60, what="first documents done")

        # When redis-server is stopped (SIGTERM: AOF flushed) and started again on the same port/dir
        stop_redis(server)
        down_at = time.monotonic()
        time.sleep(2)
        server = start_redis(rdir, port=port)
        up_at = time.monotonic()
        assert ping(server.url)
        waiting = {r["id"] for r in doc_rows(settings, job_id) if r["status"] in ("pending", "queued")}
        assert waiting, "the job finished during the outage; nothing left to measure"
        wait_until(lambda: any(r["id"] in waiting and r["status"] not in ("pending", "queued")
                               for r in doc_rows(settings, job_id)), timeout=90,
                   what="a waiting document claimed after the restart")
        progress_again = time.monotonic()

        # Then the job completes with every document done once, rows equal the reference
        status = wait_terminal(settings, job_id, timeout=150)
        finished = time.monotonic()
        rows = doc_rows(settings, job_id)
        result = {"documents": len(rows), "outage_s": round(up_at - down_at, 2),
                  "first_claim_after_restart_s": round(progress_again - up_at, 2),
                  "job_finished_after_restart_s": round(finished - up_at, 2),
                  "lost": sum(r["status"] != "done" for r in rows),
                  "duplicate_rows": duplicate_rows(settings, job_id)}
        print("redis restart:", json.dumps(result))
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "redis_restart.json").write_text(json.dumps(result, indent=2) + "\n")
        assert (status["state"], status["done"]) == ("succeeded", 400)
        assert result["lost"] == 0 and result["duplicate_rows"] == 0
        assert stored_entities(settings, job_id) == reference_entities(docs)
    finally:
        workers.stop_all()
        stop_redis(server)
