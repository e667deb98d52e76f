"""Hand documents to workers under a high-water mark, and the reconciler.

Order of effects (reliability.md §3): mark ids ``queued`` and COMMIT, then publish. A publish
that fails puts its ids back to ``pending``; if even that fails, the reconciler finds them
(``queued`` older than the stale threshold). Duplicates are harmless: claims are fenced.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

import redis
from celery import Celery

from storage import repo
from storage.db import Database, get_database
from storage.errors import TransientError
from storage.queue import BatchMessage, make_celery, publish, queue_keys
from storage.redis_server import broker_url
from storage.settings import Settings

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
            _APPS[key] = (make_celery(settings, url), redis.Redis.from_url(url, socket_timeout=10))
        return _APPS[key]


def queue_depth(settings: Settings) -> int:
    """Messages waiting in the shiti queue, both lanes (in-flight ones are not counted)."""
    client = broker(settings)[1]
    return sum(int(client.llen(key)) for key in queue_keys(settings.queue))


def dispatch(settings: Settings, *, job_id: str | None = None, db: Database | None = None) -> int:
    """Top the broker queue up to ``settings.high_water`` batches from pending documents.

    Args:
        settings: shiti settings.
        job_id: only this job; default every dispatchable job, oldest first.
        db: database (default from settings).

    Returns:
        The number of batches published.

    Raises:
        TransientError: no broker configured or running.
    """
    db = db or get_database(settings)
    app, _ = broker(settings)
    room = settings.high_water - queue_depth(settings)
    published = 0
    for jid in [job_id] if job_id else repo.dispatchable_jobs(db):
        if room <= 0:
            break
        pending = repo.next_pending(db, jid, limit=room * settings.batch_docs)
        for batch in plan_batches(pending, max_chars=settings.batch_chars, max_docs=settings.batch_docs)[:room]:
            ids = repo.mark_queued(db, batch)
            if not ids:
                continue  # another dispatcher took them
            try:
                publish(app, BatchMessage(jid, tuple(ids)), queue=settings.queue)
            except Exception:
                repo.unqueue(db, ids)
                raise
            published += 1
            room -= 1
    return published


def reconcile(settings: Settings, *, db: Database | None = None, publish_batches: bool = True) -> dict[str, Any]:
    """Repair drift: return stale ``queued`` and lease-expired ``processing`` documents to
    ``pending``, recount every open job (finishing those that are complete), then dispatch.

    ``queued`` is stale after ``settings.lost_queued_seconds`` when the broker queue is empty,
    else after ``settings.stale_queued_after``.

    Returns:
        ``{"requeued": n, "recounted": n, "published": n}``.
    """
    db = db or get_database(settings)
    stale_after = settings.stale_queued_after
    try:
        if queue_depth(settings) == 0:
            # No message is waiting: a queued document this old was in a message that was lost or
            # is held by a dead worker (kombu would restore it only after the visibility timeout).
            stale_after = min(stale_after, settings.lost_queued_seconds)
    except (redis.RedisError, TransientError):
        pass  # no broker, or it is down: the long threshold only; dispatch below says what is wrong
    requeued = repo.requeue_stale(db, stale_queued_after=stale_after)
    jobs = repo.open_jobs(db)
    for jid in jobs:
        repo.recount(db, jid)
    published = dispatch(settings, db=db) if publish_batches else 0
    if requeued:
        log.warning("reconcile: %d stale documents returned to pending", requeued)
    return {"requeued": requeued, "recounted": len(jobs), "published": published}
