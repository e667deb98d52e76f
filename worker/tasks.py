"""The one task: document ids in -> claim -> pipeline -> one fenced write -> top up the queue."""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy.exc import OperationalError

from storage import repo
from storage.db import Database, get_database
from storage.errors import TransientError
from storage.queue import TASK_ANNOTATE
from storage.settings import Settings
from worker.app import SETTINGS, app
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
              db: Database | None = None, topup: bool = True) -> dict[str, int]:
    """Process one batch; safe to run any number of times, concurrently too.

    Returns:
        ``{"claimed": n, "done": n, "failed": n, "fenced": n}``.
    """
    db = db or get_database(settings)
    claimed = repo.claim(db, job_id=job_id, doc_ids=doc_ids, lease_seconds=settings.lease_seconds,
                         max_attempts=settings.max_attempts)
    stats = {"claimed": len(claimed), "done": 0, "failed": 0, "fenced": 0}
    if claimed:
        outcomes = annotate_claimed(claimed, tagger or get_tagger(settings), settings)
        stats.update(repo.save_outcomes(db, job_id=job_id, lease_token=claimed[0].lease_token,
                                        outcomes=outcomes))
    if topup:
        _topup(settings, db)
    return stats


def _topup(settings: Settings, db: Database) -> None:
    # Workers keep the queue filled as they drain it, so no separate dispatcher must run.
    from producer.dispatch import dispatch

    try:
        dispatch(settings, db=db)
    except Exception:
        log.warning("queue top-up failed; the reconciler will send the rest", exc_info=True)


@app.task(name=TASK_ANNOTATE, bind=True, autoretry_for=(OperationalError, TransientError),
          retry_backoff=True, retry_backoff_max=60, retry_jitter=True, max_retries=5)
def annotate_batch(self: Any, job_id: str, doc_ids: list[int]) -> dict[str, int]:
    """Celery entry point; arguments are the ``storage.queue.BatchMessage`` fields."""
    return run_batch(SETTINGS, job_id=job_id, doc_ids=[int(i) for i in doc_ids])
