"""The Celery adapter: the one task, its retry policy and its re-send lane (the work is ``worker.batch``)."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task

from storage.broker.queue import PRIORITY_RECOVERY, TASK_ANNOTATE
from storage.core.backoff import backoff
from storage.core.errors import TransientError
from worker.app import SETTINGS, app
from worker import grouper
from worker.batch import run_batch
from worker.runtime import served_hash

log = logging.getLogger(__name__)


def _start_grouping(job_id: str) -> None:
    grouper.start(SETTINGS, job_id)


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


# Workers failing together must not come back together: each waits 50-100 % of the exponential
# step from 0.5 s. The cap (db_retry_max_delay) keeps the wait after the database returns short,
# and every countdown far below the broker's visibility timeout (a longer ETA is redelivered
# again and again).
RETRY_JITTER = (0.5, 1.0)


# Retries are for transient infrastructure errors only (a database restarting or locked). They
# are bounded in time, not in count: a batch waits out an outage of up to ``db_outage_seconds``
# and runs again within ``db_retry_max_delay`` of the database coming back. Giving up loses
# nothing either: the documents stay queued or leased and the reconciler sends them again.
@app.task(name=TASK_ANNOTATE, bind=True, base=BatchTask, max_retries=None, default_retry_delay=0)
def annotate_batch(self: Any, job_id: str, doc_ids: list[int], failing_since: float | None = None) -> dict[str, int]:
    """Celery entry point; arguments are the ``storage.broker.queue.BatchMessage`` fields (plus, on a
    retry, when the outage began)."""
    try:
        return run_batch(SETTINGS, job_id=job_id, doc_ids=[int(i) for i in doc_ids], owner=self.request.id,
                         model_hash=served_hash(SETTINGS), on_finished=_start_grouping)
    except TransientError as exc:
        since = failing_since or time.time()
        if time.time() - since > SETTINGS.db_outage_seconds:
            log.error("batch of job %s: database unavailable for over %d s, giving it back to the reconciler",
                      job_id, SETTINGS.db_outage_seconds)
            raise
        delay = backoff(self.request.retries, first=0.5, cap=SETTINGS.db_retry_max_delay, jitter=RETRY_JITTER)
        log.warning("batch of job %s: %s; trying again in %.1f s", job_id, type(exc).__name__, delay)
        raise self.retry(exc=exc, countdown=delay,
                         kwargs={"job_id": job_id, "doc_ids": doc_ids, "failing_since": since}) from exc
