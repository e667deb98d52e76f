"""Short leases at work: a batch longer than its lease keeps it (heartbeats), and documents whose
message was lost come back after ``lost_queued_seconds``, not after the visibility timeout."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from producer.service import submit_corpus
from storage.catalog import resolve
from storage.broker.presence import announce, withdraw
from storage.core.views import Presence
from storage.broker.queue import queue_for, queue_keys
from storage.broker.redis_server import RedisServer
from tests.helpers.jobs import wait_terminal
from tests.helpers.processes import WorkerPool
from tests.reliability.helpers import doc_rows, make_texts, short_settings

pytestmark = pytest.mark.integration
SLOW_MODEL = "py:tests.helpers.fake_tagger:make_redelivery_tagger"  # 0.3 s per document


def test_a_batch_longer_than_its_lease_keeps_it(tmp_path: Path, redis_server: RedisServer,
                                                workers: WorkerPool) -> None:
    # Given a 3 s lease renewed every second, a reconciler every second, and one 20-document
    # batch that takes about 6 s
    settings = short_settings(tmp_path, redis_server, model=SLOW_MODEL, lease_seconds=3, heartbeat_seconds=1,
                              reconcile_interval=1, batch_docs=20, soft_time_limit=20, time_limit=25,
                              visibility_timeout=30, doc_deadline_base=10.0)
    workers.start(settings)
    # When it runs
    job = submit_corpus(settings, [dict(d) for d in make_texts(20)]).job_id
    status = wait_terminal(settings, job, timeout=60)
    # Then every document was tried once: the reconciler never took a live lease back
    assert (status["state"], status["done"]) == ("succeeded", 20)
    assert {r["attempts"] for r in doc_rows(settings, job)} == {1}


def test_queued_documents_whose_message_was_lost_are_sent_again(tmp_path: Path, redis_server: RedisServer,
                                                                workers: WorkerPool) -> None:
    # Given a job whose batch messages vanished from the broker (documents stay "queued"), a
    # visibility timeout of a minute (the old recovery path: VT + time limit)
    settings = short_settings(tmp_path, redis_server, visibility_timeout=60, lost_queued_seconds=3,
                              reconcile_interval=1)
    client = redis.Redis.from_url(redis_server.url)
    # (a worker announced a moment ago, so the queue takes a batch per worker plus one: both batches)
    served = resolve(settings)
    announce(client, settings, Presence(node="gone@test", model=served.name, content_hash=served.content_hash, labels=[]))
    job = submit_corpus(settings, [dict(d) for d in make_texts(30)]).job_id
    withdraw(client, settings, "gone@test")
    assert client.delete(*queue_keys(queue_for(settings, settings.model_name))) == 1  # both batches
    assert {r["status"] for r in doc_rows(settings, job)} == {"queued"}
    # When a worker comes up
    start = time.monotonic()
    workers.start(settings)
    # Then the reconciler re-sends them within seconds and the job finishes, each document once
    status = wait_terminal(settings, job, timeout=40)
    assert (status["state"], status["done"]) == ("succeeded", 30)
    assert time.monotonic() - start < 30
    assert {r["attempts"] for r in doc_rows(settings, job)} == {1}
