"""Cancel reaches a document while it is being tagged: a real worker on the shipped model abandons
a long document at its next window, and the job ends ``cancelled`` within seconds, not after the
document's whole run."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from producer.service import cancel_job, job_status, submit_corpus
from storage.sql.db import get_database
from storage.broker.redis_server import RedisServer
from storage.sql.schema import document, entity
from storage.core.settings import DEFAULT_MODEL, Settings
from tests.helpers.jobs import wait_terminal
from tests.helpers.processes import WorkerPool

pytestmark = pytest.mark.integration

NEWS = "新华社北京电，国务院总理李强在上海复旦大学会见了来自浙江的代表团。"


def test_cancel_abandons_a_long_document_mid_way(tmp_path: Path, redis_server: RedisServer,
                                                 workers: WorkerPool) -> None:
    # Given one worker on the shipped model and a document that takes it far longer than the test
    # allows the cancel (about 300,000 characters: tens of seconds of windows on one core)
    settings = Settings(data_dir=tmp_path / "data", redis_url=redis_server.url, model=str(DEFAULT_MODEL),
                        queue=f"q-{uuid.uuid4().hex[:8]}")
    workers.start(settings, timeout=120)
    long_text = NEWS * (300_000 // len(NEWS))
    job = submit_corpus(settings, [{"id": "long", "text": long_text}, {"id": "after", "text": NEWS}]).job_id
    deadline = time.monotonic() + 60
    while job_status(settings, job)["processing"] == 0:
        assert time.monotonic() < deadline, "the worker never claimed the long document"
        time.sleep(0.2)
    time.sleep(2.0)  # well inside the document: windows are running
    # When the job is cancelled
    asked = time.monotonic()
    cancel_job(settings, job)
    status = wait_terminal(settings, job, timeout=30)
    took = time.monotonic() - asked
    # Then it ends cancelled within a few seconds (the worker reads the job state every second)
    assert status["state"] == "cancelled", status
    assert took < 8.0, f"cancel took {took:.1f} s"
    with get_database(settings).read() as conn:
        rows = dict(conn.execute(select(document.c.ext_id, document.c.status).where(document.c.job_id == job)).all())
        n_entities = conn.execute(select(entity.c.id).where(entity.c.job_id == job)).all()
    # And the long document is cancelled, not half-saved: no entities of it were written
    assert rows == {"long": "cancelled", "after": "cancelled"}
    assert n_entities == []
