"""Database outages at default recovery settings: PostgreSQL stopped for 30 s mid-job, and an
SQLite file write-locked for 30 s. Workers back off and retry (storage/core/backoff.py), nothing is lost
or failed for it, the job finishes with the reference entities, progress resumes within seconds
of the database's return, and the API answers 503 with ``Retry-After`` (never 500) meanwhile."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from producer.api.app import create_app
from producer.service import submit_corpus
from storage.sql.db import dispose_all
from storage.core.errors import TransientError
from storage.broker.redis_server import RedisServer
from storage.core.settings import Settings
from tests.helpers.jobs import stored_entities, wait_terminal
from tests.helpers.postgres import PgCluster
from tests.helpers.processes import WorkerPool
from tests.reliability.helpers import (
    ARTIFACTS,
    doc_rows,
    duplicate_rows,
    job_row,
    make_texts,
    reference_entities,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SLOW_MODEL = "py:tests.helpers.fake_tagger:make_slow_tagger"  # 50 ms per document
OUTAGE_S = 30.0
N_DOCS = 1200


def _done(settings: Settings, job_id: str) -> int | None:
    try:
        return int(job_row(settings, job_id)["done"])
    except TransientError:  # the database is away
        return None


def _api_probe(client: TestClient, job_id: str, stop: threading.Event, codes: list[tuple[int, str | None]]) -> None:
    while not stop.is_set():
        got = client.get(f"/jobs/{job_id}")
        codes.append((got.status_code, got.headers.get("Retry-After")))
        stop.wait(1.0)


def _outage(settings: Settings, workers: WorkerPool, *, down: Callable[[], None], up: Callable[[], None],
            name: str) -> dict[str, Any]:
    """Run a job on 2 workers, call ``down``, wait OUTAGE_S, call ``up``; return the measurements."""
    for _ in range(2):
        workers.start(settings)
    docs = make_texts(N_DOCS, seed=17)
    job_id = submit_corpus(settings, [dict(d) for d in docs]).job_id
    wait_until(lambda: (_done(settings, job_id) or 0) >= 100, timeout=60, what="first documents done")
    codes: list[tuple[int, str | None]] = []
    with TestClient(create_app(settings)) as client:
        stop = threading.Event()
        probe = threading.Thread(target=_api_probe, args=(client, job_id, stop, codes), daemon=True)
        done_before = _done(settings, job_id)
        down()
        probe.start()
        time.sleep(OUTAGE_S)
        stop.set()
        probe.join()
        up()
        back = time.monotonic()
        done_at_up = _done(settings, job_id) or 0
        wait_until(lambda: (_done(settings, job_id) or 0) > done_at_up, timeout=60, poll=0.2,
                   what="progress after the database came back")
        progress_s = time.monotonic() - back
        status = wait_terminal(settings, job_id, timeout=180)
    rows = doc_rows(settings, job_id)
    result = {"database": name, "outage_s": OUTAGE_S, "documents": len(rows), "done_before_outage": done_before,
              "done_when_back": done_at_up, "progress_after_back_s": round(progress_s, 2),
              "api_codes_during_outage": sorted({c for c, _ in codes}), "state": status["state"],
              "failed": status["failed"], "duplicate_rows": duplicate_rows(settings, job_id),
              "max_attempts_seen": max(r["attempts"] for r in rows)}
    print(f"{name} outage:", json.dumps(result))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"db_outage_{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    assert (status["state"], status["done"], status["failed"]) == ("succeeded", N_DOCS, 0), result
    assert result["duplicate_rows"] == 0
    assert stored_entities(settings, job_id) == reference_entities(docs)
    assert progress_s < 10, result
    assert codes and all(c in (200, 503) for c, _ in codes), codes
    assert all(after == "5" for c, after in codes if c == 503), codes
    return result


def test_postgres_stopped_for_30_s_mid_job(tmp_path: Path, redis_server: RedisServer, workers: WorkerPool) -> None:
    # Given a dedicated PostgreSQL cluster and default lease, heartbeat, reconcile and retry settings
    cluster = PgCluster()
    try:
        cluster.start()
        settings = Settings(data_dir=tmp_path / "data", database_url=cluster.url, redis_url=redis_server.url,
                            model=SLOW_MODEL, queue=f"q-{uuid.uuid4().hex[:8]}", batch_docs=20)
        # When the server is stopped (clients disconnected) for 30 s while the job runs
        result = _outage(settings, workers, down=cluster.stop, up=cluster.start, name="postgresql")
        # Then (beyond the shared checks) the API said 503 while it was down
        assert 503 in result["api_codes_during_outage"]
    finally:
        workers.stop_all()
        dispose_all()
        cluster.remove()


def test_sqlite_write_locked_for_30_s_mid_job(tmp_path: Path, redis_server: RedisServer, workers: WorkerPool) -> None:
    # Given SQLite at default settings (30 s busy timeout)
    settings = Settings(data_dir=tmp_path / "data", redis_url=redis_server.url, model=SLOW_MODEL,
                        queue=f"q-{uuid.uuid4().hex[:8]}", batch_docs=20)
    holder: list[sqlite3.Connection] = []

    def lock() -> None:
        conn = sqlite3.connect(settings.sqlalchemy_url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        holder.append(conn)

    def unlock() -> None:
        holder[0].rollback()
        holder[0].close()

    # When another process holds the write lock for 30 s while the job runs
    try:
        _outage(settings, workers, down=lock, up=unlock, name="sqlite")
    finally:
        workers.stop_all()
        dispose_all()
