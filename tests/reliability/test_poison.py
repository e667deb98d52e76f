"""Poison documents on real workers: a document that makes the model raise, pass its deadline,
hang (soft time limit), get stuck where the soft limit cannot reach (hard limit), kill its
process or exit is tried at most ``max_attempts`` times and ends ``failed`` with a reason;
every other document of its batch is done; the job ends ``partially_failed``."""

from __future__ import annotations

import pytest
from pathlib import Path

from producer.service import submit_corpus
from storage.sql import repo
from storage.sql.db import get_database
from storage.broker.redis_server import RedisServer
from tests.helpers.jobs import stored_entities, wait_terminal
from tests.helpers.processes import WorkerPool
from tests.reliability.helpers import FAKE_MODEL, doc_rows, make_texts, reference_entities, short_settings

pytestmark = pytest.mark.integration

# marker -> (reason, tried): how each bad document must end.
EXPECTED = {
    "[[RAISE]]": ("error", 1),  # an exception fails the document at once: retrying cannot help
    "[[SLEEP]]": ("timeout", 1),  # per-document deadline (layer 1)
    "[[HANG]]": ("poison", 3),  # soft time limit (layer 2) each try
    "[[STUCK]]": ("poison", 3),  # soft limit blocked: hard limit kills the child (layer 3)
    "[[KILL]]": ("poison", 3),  # SIGKILL of the pool child
    "[[EXIT]]": ("poison", 3),  # os._exit in the pool child
}


def test_poison_documents_end_failed_and_spare_their_batches(tmp_path: Path, redis_server: RedisServer,
                                                              workers: WorkerPool) -> None:
    # Given 2 workers (soft/hard limits 4/6 s, 1 s per-document deadline) and 42 normal
    # documents with one bad document in the middle of each 8-document batch
    settings = short_settings(tmp_path, redis_server, model=FAKE_MODEL, batch_docs=8, soft_time_limit=4,
                              time_limit=6, doc_deadline_base=1.0, doc_deadline_per_10k=0.0)
    normal = make_texts(42, seed=3)
    docs, bad = [], {}
    for i, marker in enumerate(EXPECTED):
        chunk = normal[i * 7:(i + 1) * 7]
        docs.extend(chunk[:3])
        bad[f"bad-{marker.strip('[]').lower()}"] = marker
        docs.append({"id": f"bad-{marker.strip('[]').lower()}", "text": f"张伟在北京{marker}开会"})
        docs.extend(chunk[3:])
    for _ in range(2):
        workers.start(settings)

    # When the job runs
    job_id = submit_corpus(settings, docs).job_id
    status = wait_terminal(settings, job_id, timeout=150)

    # Then each bad document failed with its reason after at most 3 tries, the rest are done
    rows = {r["ext_id"]: r for r in doc_rows(settings, job_id)}
    for ext_id, marker in bad.items():
        reason, tried = EXPECTED[marker]
        row = rows[ext_id]
        assert (row["status"], row["reason"], row["attempts"]) == ("failed", reason, tried), (marker, row)
        assert row["error"]
    good = [r for k, r in rows.items() if k not in bad]
    assert all(r["status"] == "done" and r["attempts"] <= 3 for r in good)
    assert (status["state"], status["done"], status["failed"]) == ("partially_failed", 42, 6)
    assert stored_entities(settings, job_id) == reference_entities(normal)
    assert repo.recount(get_database(settings), job_id) == {
        k: status[k] for k in ("total", "done", "failed", "cancelled", "chars_total", "chars_done")}
