"""Lease heartbeats: keep a running batch's claims alive with a short lease.

A claim's lease only has to outlive the gap between two renewals, not the longest batch, so a
claimant that dies (SIGKILL, OOM, node loss) is noticed within about one lease plus one
reconcile interval. The renewal is fenced by the lease token (:func:`storage.repo.renew`): once
another claimant took a document over, renewing changes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from storage import repo
from storage.db import Database

log = logging.getLogger(__name__)


class Heartbeat(threading.Thread):
    """Daemon thread renewing one lease token every ``interval`` seconds until stopped."""

    def __init__(self, db: Database, *, lease_token: str, lease_seconds: float, interval: float) -> None:
        super().__init__(name="shiti-heartbeat", daemon=True)
        self.db, self.token, self.lease, self.interval = db, lease_token, lease_seconds, interval
        self.stopped = threading.Event()
        self.renewals = 0

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                if repo.renew(self.db, lease_token=self.token, lease_seconds=self.lease) == 0:
                    return  # nothing left under this token: finished, released or taken over
                self.renewals += 1
            except Exception as exc:  # database away: the next beat tries again, the lease may lapse
                log.warning("lease renewal failed (%s); retrying in %.0f s", exc, self.interval)

    def stop(self) -> None:
        self.stopped.set()
        if self.is_alive() and self is not threading.current_thread():
            self.join(timeout=self.interval + 5)


@contextmanager
def heartbeat(db: Database, *, lease_token: str, lease_seconds: float, interval: float) -> Iterator[Heartbeat]:
    """Renew ``lease_token`` every ``interval`` seconds while the block runs."""
    beat = Heartbeat(db, lease_token=lease_token, lease_seconds=lease_seconds, interval=interval)
    beat.start()
    try:
        yield beat
    finally:
        beat.stop()
