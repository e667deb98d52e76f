"""Lease heartbeats: keep a running batch's claims alive with a short lease.

A claim's lease only has to outlive the gap between two renewals, not the longest batch, so a
claimant that dies (SIGKILL, OOM, node loss) is noticed within about one lease plus one
reconcile interval. The renewal is fenced by the lease token (:func:`storage.sql.repo.renew`): once
another claimant took a document over, renewing changes nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from storage.sql import queries, repo
from storage.sql.db import Database
from storage.core.domain import JobStatus

log = logging.getLogger(__name__)


class Heartbeat(threading.Thread):
    """Daemon thread renewing one lease token every ``interval`` seconds until stopped, and
    (given a ``job_id``) reading the job's state every ``cancel_poll`` seconds: once the job is
    cancelling, ``cancelled`` is set, so the document running can be abandoned mid-way."""

    def __init__(self, db: Database, *, lease_token: str, lease_seconds: float, interval: float,
                 job_id: str | None = None, cancel_poll: float = 1.0) -> None:
        super().__init__(name="shiti-heartbeat", daemon=True)
        self.db, self.token, self.lease, self.interval = db, lease_token, lease_seconds, interval
        self.job_id = job_id
        self.tick = min(interval, cancel_poll) if job_id is not None else interval
        self.stopped = threading.Event()
        self.cancelled = threading.Event()
        self.renewals = 0

    def run(self) -> None:
        next_renewal = time.monotonic() + self.interval
        while not self.stopped.wait(self.tick):
            try:
                if self.job_id is not None and not self.cancelled.is_set() and \
                        queries.job_state(self.db, self.job_id) in (JobStatus.CANCELLING, JobStatus.CANCELLED):
                    self.cancelled.set()
                if time.monotonic() < next_renewal:
                    continue
                next_renewal = time.monotonic() + self.interval
                if repo.renew(self.db, lease_token=self.token, lease_seconds=self.lease) == 0:
                    return  # nothing left under this token: finished, released or taken over
                self.renewals += 1
            except Exception as exc:  # database away: the next beat tries again, the lease may lapse
                log.warning("lease renewal failed (%s); retrying in %.0f s", exc, self.tick)

    def stop(self) -> None:
        self.stopped.set()
        if self.is_alive() and self is not threading.current_thread():
            self.join(timeout=self.interval + 5)


@contextmanager
def heartbeat(db: Database, *, lease_token: str, lease_seconds: float, interval: float,
              job_id: str | None = None, cancel_poll: float = 1.0) -> Iterator[Heartbeat]:
    """Renew ``lease_token`` every ``interval`` seconds while the block runs (and watch
    ``job_id`` for a cancel every ``cancel_poll`` seconds: ``Heartbeat.cancelled``)."""
    beat = Heartbeat(db, lease_token=lease_token, lease_seconds=lease_seconds, interval=interval,
                     job_id=job_id, cancel_poll=cancel_poll)
    beat.start()
    try:
        yield beat
    finally:
        beat.stop()
