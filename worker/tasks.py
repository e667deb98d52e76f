"""The one task: document ids in -> claim -> pipeline -> one fenced write -> top up the queue."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import OperationalError

from storage import repo
from storage.db import Database, get_database
from storage.errors import TransientError
from storage.queue import TASK_ANNOTATE
from storage.settings import Settings
from worker.app import SETTINGS, app
from worker.heartbeat import heartbeat
from worker.pipeline import WARMUP_TEXT, TaggerLike, annotate_claimed, load_configured_tagger

log = logging.getLogger(__name__)
_TAGGER: TaggerLike | None = None


def init_child(settings: Settings) -> None:
    """Load the tagger once in this process and warm it up (``worker_process_init``)."""
    global _TAGGER
    t0 = time.monotonic()
    _TAGGER = load_configured_tagger(settings)
    _TAGGER.annotate([WARMUP_TEXT])
    log.info("model %s ready in %.1f s", settings.model, time.monotonic() - t0)


def get_tagger(settings: Settings) -> TaggerLike:
    """This process's tagger (loaded now if ``init_child`` did not run, e.g. solo pool)."""
    if _TAGGER is None:
        init_child(settings)
    assert _TAGGER is not None
    return _TAGGER


def run_batch(settings: Settings, *, job_id: str, doc_ids: list[int], tagger: TaggerLike | None = None,
              db: Database | None = None, topup: bool = True, owner: str | None = None) -> dict[str, int]:
    """Process one batch; safe to run any number of times, concurrently too.

    Documents never attempted are claimed together and tagged in one batched call. Documents
    attempted before (an earlier run died: kill, crash, time limit) are claimed and tagged
    one at a time, so only the document that kills its process pays attempts and becomes
    ``poison`` after ``max_attempts``; its neighbours finish. The cancel check runs at every
    claim. On ``SoftTimeLimitExceeded`` this run's unfinished documents go back to
    ``pending`` and the exception propagates.

    Args:
        owner: the Celery message id (lets a redelivery of the same message take its leases back).

    Returns:
        ``{"claimed": n, "done": n, "failed": n, "fenced": n}``.
    """
    db = db or get_database(settings)
    stats = {"claimed": 0, "done": 0, "failed": 0, "fenced": 0}
    suspects = repo.tried_before(db, doc_ids)
    fresh = [i for i in doc_ids if i not in suspects]
    groups = ([fresh] if fresh else []) + [[i] for i in doc_ids if i in suspects]
    for ids in groups:
        claimed = repo.claim(db, job_id=job_id, doc_ids=ids, lease_seconds=settings.lease_seconds,
                             max_attempts=settings.max_attempts, owner=owner)
        if not claimed:
            continue
        stats["claimed"] += len(claimed)
        try:
            with heartbeat(db, lease_token=claimed[0].lease_token, lease_seconds=settings.lease_seconds,
                           interval=settings.heartbeat_seconds):
                outcomes = annotate_claimed(claimed, tagger or get_tagger(settings), settings)
            saved = repo.save_outcomes(db, job_id=job_id, lease_token=claimed[0].lease_token, outcomes=outcomes)
        except SoftTimeLimitExceeded:
            _release(db, doc_ids, claimed[0].lease_token)
            raise
        for key in ("done", "failed", "fenced"):
            stats[key] += saved[key]
    if topup:
        _topup(settings, db)
    return stats


def _release(db: Database, doc_ids: list[int], lease_token: str) -> None:
    try:
        n = repo.release(db, doc_ids=doc_ids, lease_token=lease_token)
        log.warning("soft time limit: %d unfinished documents returned to pending", n)
    except Exception:  # the lease expiry and the reconciler still recover them
        log.exception("soft time limit: could not release the batch's documents")


def _topup(settings: Settings, db: Database) -> None:
    # Workers keep the queue filled as they drain it, so no separate dispatcher must run.
    from producer.dispatch import dispatch

    try:
        dispatch(settings, db=db)
    except Exception:
        log.warning("queue top-up failed; the reconciler will send the rest", exc_info=True)


# Retries are for transient infrastructure errors only (a database restarting or locked: twelve
# backed-off tries with jitter span several minutes), and their countdown stays far below the
# visibility timeout (an ETA longer than VT is delivered again and again, reliability.md §1).
@app.task(name=TASK_ANNOTATE, bind=True, autoretry_for=(OperationalError, TransientError),
          retry_backoff=True, retry_backoff_max=max(1, min(60, SETTINGS.visibility_timeout // 4)),
          retry_jitter=True, max_retries=12)
def annotate_batch(self: Any, job_id: str, doc_ids: list[int]) -> dict[str, int]:
    """Celery entry point; arguments are the ``storage.queue.BatchMessage`` fields."""
    return run_batch(SETTINGS, job_id=job_id, doc_ids=[int(i) for i in doc_ids], owner=self.request.id)
