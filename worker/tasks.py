"""The one task: document ids in -> claim -> pipeline -> one fenced write -> top up the queue."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import OperationalError

from storage import repo
from storage.db import Database, get_database
from storage.errors import TransientError
from storage.queue import PRIORITY_RECOVERY, TASK_ANNOTATE
from storage.settings import Settings
from worker import shutdown
from worker.app import SETTINGS, app
from worker.heartbeat import heartbeat
from worker.pipeline import WARMUP_TEXT, TaggerLike, annotate_claimed, load_configured_tagger
from worker.retry import retry_delay

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
    ``pending`` and the exception propagates. After a SIGTERM (``worker.shutdown``) the batch
    stops between documents: finished ones are saved, the rest go back to ``pending``.

    Args:
        owner: the Celery message id (lets a redelivery of the same message take its leases back).

    Returns:
        ``{"claimed": n, "done": n, "failed": n, "fenced": n}``, plus ``"released": n`` after a stop.
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
        token = claimed[0].lease_token
        try:
            with heartbeat(db, lease_token=token, lease_seconds=settings.lease_seconds,
                           interval=settings.heartbeat_seconds), shutdown.busy():
                outcomes = annotate_claimed(claimed, tagger or get_tagger(settings), settings, stop=shutdown.stopping)
            saved = repo.save_outcomes(db, job_id=job_id, lease_token=token, outcomes=outcomes)
        except SoftTimeLimitExceeded:
            _release(db, doc_ids, token, why="soft time limit")
            raise
        for key in ("done", "failed", "fenced"):
            stats[key] += saved[key]
        if shutdown.stopping():
            # Asked to stop (SIGTERM): what is done is saved; the rest goes back to pending without
            # costing an attempt, for another worker (top-up below) or this one after its restart.
            stats["released"] = _release(db, doc_ids, token, why="shutting down", refund=True)
            break
    if topup:
        _topup(settings, db)
    return stats


def _release(db: Database, doc_ids: list[int], lease_token: str, *, why: str, refund: bool = False) -> int:
    try:
        n = repo.release(db, doc_ids=doc_ids, lease_token=lease_token, refund=refund)
        log.warning("%s: %d unfinished documents returned to pending", why, n)
        return n
    except Exception:  # the lease expiry and the reconciler still recover them
        log.exception("%s: could not release the batch's documents", why)
        return 0


def _topup(settings: Settings, db: Database) -> None:
    # Workers keep the queue filled as they drain it, so no separate dispatcher must run.
    from producer.dispatch import dispatch

    try:
        dispatch(settings, db=db)
    except Exception:
        log.warning("queue top-up failed; the reconciler will send the rest", exc_info=True)


class BatchTask(Task):  # type: ignore[misc]
    """The batch task's class: every re-send of a batch goes to the recovery lane of the queue.

    Celery re-sends a batch through :meth:`signature_from_request` when its pool child died
    (``task_retry_on_worker_lost``) and when it retries after a transient error; in the recovery
    lane it runs next, and under the same message id it takes its own leases back at once.
    """

    def signature_from_request(self, *args: Any, **kwargs: Any) -> Any:
        sig = super().signature_from_request(*args, **kwargs)
        sig.set(priority=PRIORITY_RECOVERY)
        return sig


# Retries are for transient infrastructure errors only (a database restarting or locked). They
# are bounded in time, not in count: a batch waits out an outage of up to ``db_outage_seconds``
# and runs again within ``db_retry_max_delay`` of the database coming back. Giving up loses
# nothing either: the documents stay queued or leased and the reconciler sends them again.
@app.task(name=TASK_ANNOTATE, bind=True, base=BatchTask, max_retries=None, default_retry_delay=0)
def annotate_batch(self: Any, job_id: str, doc_ids: list[int], failing_since: float | None = None) -> dict[str, int]:
    """Celery entry point; arguments are the ``storage.queue.BatchMessage`` fields (plus, on a
    retry, when the outage began)."""
    try:
        return run_batch(SETTINGS, job_id=job_id, doc_ids=[int(i) for i in doc_ids], owner=self.request.id)
    except (OperationalError, TransientError) as exc:
        since = failing_since or time.time()
        if time.time() - since > SETTINGS.db_outage_seconds:
            log.error("batch of job %s: database unavailable for over %d s, giving it back to the reconciler",
                      job_id, SETTINGS.db_outage_seconds)
            raise
        delay = retry_delay(self.request.retries, cap=SETTINGS.db_retry_max_delay)
        log.warning("batch of job %s: %s; trying again in %.1f s", job_id, type(exc).__name__, delay)
        raise self.retry(exc=exc, countdown=delay,
                         kwargs={"job_id": job_id, "doc_ids": doc_ids, "failing_since": since}) from exc
