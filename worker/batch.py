"""One batch: document ids in -> claim -> tag -> one fenced write -> top up the queue.

Celery-free apart from ``SoftTimeLimitExceeded`` (``worker/tasks.py`` is the Celery adapter), so
tests run it directly with any tagger and database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from celery.exceptions import SoftTimeLimitExceeded

from storage.sql import queries, repo
from storage.sql.db import Database, get_database
from storage.broker.dispatch import dispatch
from storage.core.domain import JOB_TERMINAL
from storage.core.fold import fold_id
from storage.core.recipe import recipe
from storage.core.settings import Settings
from worker import shutdown
from worker.dictionaries import job_lexicon
from worker.heartbeat import heartbeat
from worker.pipeline import TaggerLike, annotate_claimed
from worker.runtime import get_tagger

log = logging.getLogger(__name__)


def run_batch(settings: Settings, *, job_id: str, doc_ids: list[int], tagger: TaggerLike | None = None,
              db: Database | None = None, topup: bool = True, owner: str | None = None,
              model_hash: str | None = None, on_finished: Callable[[str], None] | None = None) -> dict[str, int]:
    """Process one batch; safe to run any number of times, concurrently too.

    Documents never attempted are claimed together (and tagged one at a time). Documents
    attempted before (an earlier run died: kill, crash, time limit) are claimed and tagged
    one at a time, so only the document that kills its process pays attempts and becomes
    ``poison`` after ``max_attempts``; its neighbours finish. The cancel check runs at every
    claim. On ``SoftTimeLimitExceeded`` this run's unfinished documents go back to
    ``pending`` and the exception propagates. After a SIGTERM (``worker.shutdown``) the batch
    stops between documents: finished ones are saved, the rest go back to ``pending``.

    Args:
        owner: the Celery message id (lets a redelivery of the same message take its leases back).
        model_hash: the content hash of the model this worker serves; a batch of a job recorded
            with another is not tagged (a misrouted message, or two hosts holding different
            files under one model name): its documents go back to pending, dispatch holds the
            job back while no live worker holds its files, and the job's status names the mismatch.
        on_finished: called with the job id when this batch's save left the job finished (the
            Celery task starts the corpus view build there: ``worker.grouper``).

    Returns:
        ``{"claimed": n, "done": n, "failed": n, "fenced": n}``, plus ``"released": n`` after a stop,
        ``"cancelled": n`` for documents abandoned because their job was cancelled, and
        ``"wrong_model": n`` for a batch of another model, ``"paused": n`` for a batch of a paused job.
    """
    db = db or get_database(settings)
    stats = {"claimed": 0, "done": 0, "failed": 0, "fenced": 0}
    wanted = repo.job_model(db, job_id)
    if model_hash is not None and wanted.model_hash is not None and wanted.model_hash != model_hash:
        log.error("batch of job %s is for model %s (sha256 %s) but this worker serves sha256 %s: left for "
                  "a worker of that model", job_id, wanted.model, wanted.model_hash[:12], model_hash[:12])
        repo.unqueue(db, doc_ids)
        return {**stats, "wrong_model": len(doc_ids)}
    if wanted.paused:
        # A batch queued before the pause: its documents wait (pending) until the job is resumed.
        log.info("job %s is paused: %d documents left pending", job_id, len(doc_ids))
        repo.unqueue(db, doc_ids)
        return {**stats, "paused": len(doc_ids)}
    folded = _folds(job_id, wanted.fold)
    lexicon = job_lexicon(db, wanted, folded=folded)
    # What reuse matches on (storage/core/recipe.py); unknown for a job that recorded no model hash.
    tagged_with = recipe(model_hash=wanted.model_hash, dictionary_hash=wanted.dictionary_hash, fold=wanted.fold,
                         max_length=settings.max_length, overlap=settings.overlap) if wanted.model_hash else None
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
                           interval=settings.heartbeat_seconds, job_id=job_id,
                           cancel_poll=settings.cancel_poll_seconds) as beat, shutdown.busy():
                outcomes = annotate_claimed(claimed, tagger or get_tagger(settings), settings, stop=shutdown.stopping,
                                            cancelled=beat.cancelled.is_set, folded=folded, lexicon=lexicon)
            saved = repo.save_outcomes(db, job_id=job_id, lease_token=token, outcomes=outcomes, recipe=tagged_with)
        except SoftTimeLimitExceeded:
            _release(db, doc_ids, token, why="soft time limit")
            raise
        for key in ("done", "failed", "fenced"):
            stats[key] += saved[key]
        if saved["cancelled"]:
            stats["cancelled"] = stats.get("cancelled", 0) + saved["cancelled"]
        if shutdown.stopping():
            # Asked to stop (SIGTERM): what is done is saved; the rest goes back to pending without
            # costing an attempt, for another worker (top-up below) or this one after its restart.
            stats["released"] = _release(db, doc_ids, token, why="shutting down", refund=True)
            break
    if topup:
        _topup(settings, db)
    if on_finished is not None and (stats["done"] or stats["failed"] or stats.get("cancelled")):
        _when_finished(db, job_id, on_finished)
    return stats


def _when_finished(db: Database, job_id: str, call: Callable[[str], None]) -> None:
    # A failure here only costs the first read of the job's corpus view its build.
    try:
        if queries.job_state(db, job_id) in JOB_TERMINAL:
            call(job_id)
    except Exception:
        log.exception("job %s: its corpus view is built on the first read instead", job_id)


def _folds(job_id: str, recorded: str | None) -> bool:
    """Whether to fold the job's documents: it recorded a fold. One of another table (a worker of
    another release) is folded with this worker's and logged: the job's provenance names the other."""
    if recorded is not None and recorded != fold_id():
        log.warning("job %s recorded fold %s; this worker folds with %s", job_id, recorded, fold_id())
    return recorded is not None


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
    try:
        dispatch(settings, db=db)
    except Exception:
        log.warning("queue top-up failed; the reconciler will send the rest", exc_info=True)
