"""A completion webhook end to end: a real worker tags the job, its parent's notifier POSTs the
signed summary to a real receiver that fails once, and the job's status shows the attempts."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from producer.service import job_options, job_status, submit_corpus
from storage.broker.redis_server import RedisServer
from storage.core.settings import Settings
from tests.conftest import FAKE_MODEL
from tests.helpers.jobs import wait_terminal
from tests.helpers.processes import WorkerPool
from tests.helpers.webhook_receivers import SECRET, Receiver

pytestmark = pytest.mark.integration


def test_a_finished_job_notifies_its_webhook_once_signed_after_a_failed_attempt(
        tmp_path: Path, redis_server: RedisServer, workers: WorkerPool) -> None:
    receiver = Receiver(statuses=(500,))
    try:
        settings = Settings(data_dir=tmp_path / "data", redis_url=redis_server.url, model=FAKE_MODEL,
                            queue=f"q{uuid.uuid4().hex[:8]}", webhook_secret=SECRET, webhook_allow_private=True,
                            notify_interval=0.5)
        workers.start(settings)
        docs = [{"id": str(i), "text": f"张伟在北京{i}"} for i in range(30)]
        job = submit_corpus(settings, docs, options=job_options(settings, notify_url=receiver.url)).job_id
        assert job_status(settings, job)["notify"]["state"] == "waiting for the job to finish"
        assert wait_terminal(settings, job, timeout=60)["state"] == "succeeded"
        deadline = time.monotonic() + 60  # the first attempt gets a 500, the next comes ~5 s later
        while (note := job_status(settings, job)["notify"])["state"] != "delivered":
            assert time.monotonic() < deadline, note
            time.sleep(0.2)
        assert note["attempts"] == 2
        assert len(receiver.requests) == 2 and all(r["verified"] for r in receiver.requests)
        ids = {r["headers"]["Shiti-Event-Id"] for r in receiver.requests}
        body = json.loads(receiver.requests[-1]["body"])
        assert ids == {body["event_id"]} and note["event_id"] == body["event_id"]
        assert (body["job_id"], body["state"], body["done"], body["total"]) == (job, "succeeded", 30, 30)
        assert body["model"] == FAKE_MODEL
        time.sleep(2)  # several notifier rounds later: still delivered once
        assert len(receiver.requests) == 2
    finally:
        receiver.close()
