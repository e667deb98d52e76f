"""Hand documents to workers (a queue per model, a few batches ahead, fair share), and the reconciler.

Order of effects (docs/reliability.md §3): mark ids ``queued`` and COMMIT, then publish. A publish
that fails puts its ids back to ``pending``; if even that fails, the reconciler finds them
(``queued`` older than the stale threshold). Duplicates are harmless: claims are fenced.
"""

from __future__ import annotations

import heapq
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

import redis
from celery import Celery

from storage.sql import repo
from storage.sql.db import Database, get_database
from storage.core.errors import TransientError
from storage.broker.presence import live_workers
from storage.broker.queue import BatchMessage, make_celery, publish, queue_for, queue_keys
from storage.broker.redis_server import broker_url, cached_client
from storage.core.settings import Settings

log = logging.getLogger(__name__)

_APPS: dict[tuple[str, int], tuple[Celery, redis.Redis]] = {}
_LOCK = threading.Lock()


def _after_fork_in_child() -> None:
    # A worker parent reconciles from a thread; a pool child forked while that thread held the
    # lock would otherwise block forever on its first dispatch.
    global _LOCK
    _LOCK = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def plan_batches(docs: Sequence[tuple[int, int]], *, max_chars: int, max_docs: int) -> list[list[int]]:
    """Group ``(id, n_chars)`` in order into batches of ≤ ``max_docs`` ids and ≤ ``max_chars``
    characters; a document larger than the budget gets a batch of its own."""
    batches: list[list[int]] = []
    current: list[int] = []
    chars = 0
    for doc_id, n in docs:
        if current and (len(current) >= max_docs or chars + n > max_chars):
            batches.append(current)
            current, chars = [], 0
        current.append(doc_id)
        chars += n
    if current:
        batches.append(current)
    return batches


def broker(settings: Settings) -> tuple[Celery, redis.Redis]:
    """The producer-side Celery app and a Redis client for queue depth (cached per process)."""
    url = broker_url(settings)
    key = (url, os.getpid())
    with _LOCK:
        if key not in _APPS:
            _APPS[key] = (make_celery(settings, url), cached_client(url, timeout=10))
        return _APPS[key]


def queue_depth(settings: Settings, model: str | None = None) -> int:
    """Messages waiting in a model's queue (default: the default model's), both lanes; in-flight
    ones are not counted."""
    client = broker(settings)[1]
    queue = queue_for(settings, model or settings.model_name)
    return sum(int(client.llen(key)) for key in queue_keys(queue))


def dispatch(settings: Settings, *, job_id: str | None = None, db: Database | None = None) -> int:
    """Top each model's queue up to :func:`queue_target` batches from pending documents.

    Fair share: within a model, each batch goes to the job with the least virtual time, and a
    batch of ``c`` characters adds ``c / priority`` to its job's. Running jobs of one model so
    progress at rates proportional to their priorities whatever their sizes and ages, and a job
    submitted behind a huge one gets its first batch at the next top-up (a new job starts at the
    running jobs' least virtual time: ``repo.seal_job``).

    Args:
        settings: shiti settings.
        job_id: only the model of this job (its submit); default every model with work.
        db: database (default from settings).

    Returns:
        The number of batches published.

    Raises:
        TransientError: no broker configured or running.
    """
    db = db or get_database(settings)
    app, _ = broker(settings)
    fallback = settings.model_name
    shares: dict[str, list[repo.ShareEntry]] = {}
    only = repo.job_model(db, job_id).model or fallback if job_id else None
    for entry in repo.dispatchable_jobs(db):
        model = entry.model or fallback
        if only is None or model == only:
            shares.setdefault(model, []).append(entry)
    published = 0
    live = _live_hashes(settings) if shares else {}
    for model, entries in shares.items():
        hashes = live.get(model, [])
        if hashes:
            # Live workers of the model hold these files: a job recorded with other files waits
            # (its status says for what) instead of bouncing off them.
            entries = [e for e in entries if e.model_hash is None or e.model_hash in hashes]
        room = queue_target(settings, len(hashes)) - queue_depth(settings, model)
        if room > 0 and entries:
            published += _fill(settings, db, app, queue_for(settings, model), entries, room)
    return published


def queue_target(settings: Settings, workers: int) -> int:
    """Batches to keep waiting in a model's queue served by ``workers`` live workers: one each
    plus one, capped by ``settings.high_water``.

    Each worker tops the queue up when it finishes a batch, before it takes the next, so one
    waiting batch per worker keeps every worker busy; more would only make a job submitted now
    wait behind them (fair share applies to what is not queued yet). With no live worker one
    batch waits, and the first worker's start-up reconcile fills the queue for it.
    """
    return max(1, min(settings.high_water, workers + 1))


def _live_hashes(settings: Settings) -> dict[str, list[str]]:
    """The content hash of every live worker, by model name."""
    found: dict[str, list[str]] = {}
    try:
        for p in live_workers(broker(settings)[1], settings):
            found.setdefault(p["model"], []).append(p["content_hash"])
    except redis.RedisError:
        pass  # publishing will fail and say so
    return found


def _fill(settings: Settings, db: Database, app: Celery, queue: str, entries: list[repo.ShareEntry],
          room: int) -> int:
    """Publish up to ``room`` batches to ``queue``, each to the job with the least virtual time."""
    heap = [(e.vtime, e.seq, e.job_id, e.priority) for e in entries]
    heapq.heapify(heap)
    published = 0
    while room > 0 and heap:
        vtime, seq, jid, priority = heapq.heappop(heap)
        pending = repo.next_pending(db, jid, limit=settings.batch_docs)
        if not pending:
            continue  # everything of this job is queued or running
        batch = plan_batches(pending, max_chars=settings.batch_chars, max_docs=settings.batch_docs)[0]
        chars = dict(pending)
        charge = max(1, sum(chars[i] for i in batch)) / priority
        ids = repo.mark_queued(db, batch, job_id=jid, charge=charge)
        if ids:
            try:
                publish(app, BatchMessage(jid, tuple(ids)), queue=queue)
            except Exception:
                repo.unqueue(db, ids)
                raise
            published += 1
            room -= 1
        # else another dispatcher took them: look again on the next turn
        heapq.heappush(heap, (vtime + charge, seq, jid, priority))
    return published


def reconcile(settings: Settings, *, db: Database | None = None, publish_batches: bool = True) -> dict[str, Any]:
    """Repair drift: return stale ``queued`` and lease-expired ``processing`` documents to
    ``pending``, fail jobs whose ingest was interrupted (``settings.ingest_stale_seconds``),
    recount every open job (finishing those that are complete), then dispatch.

    ``queued`` is stale after ``settings.lost_queued_seconds`` when the broker queue is empty,
    else after ``settings.stale_queued_after``.

    Returns:
        ``{"requeued": n, "recounted": n, "published": n}``.
    """
    db = db or get_database(settings)
    requeued = 0
    for model in sorted({e.model or settings.model_name for e in repo.dispatchable_jobs(db)}):
        stale_after = settings.stale_queued_after
        try:
            if queue_depth(settings, model) == 0:
                # No message is waiting: a queued document this old was in a message that was lost
                # or is held by a dead worker (kombu would restore it only after the visibility
                # timeout).
                stale_after = min(stale_after, settings.lost_queued_seconds)
        except (redis.RedisError, TransientError):
            pass  # no broker, or it is down: the long threshold only; dispatch below says what is wrong
        requeued += repo.requeue_stale(db, stale_queued_after=stale_after, model=model)
    repo.fail_stale_ingests(db, stale_after=settings.ingest_stale_seconds)
    jobs = repo.open_jobs(db)
    for jid in jobs:
        repo.recount(db, jid)
    published = dispatch(settings, db=db) if publish_batches else 0
    if requeued:
        log.warning("reconcile: %d stale documents returned to pending", requeued)
    return {"requeued": requeued, "recounted": len(jobs), "published": published}
