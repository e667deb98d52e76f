"""The completion-webhook notifier, run by a daemon thread in every worker parent.

Every ``settings.notify_interval`` seconds each worker tries ``SET <lock> NX EX <interval>`` on
the broker; the one that wins sends the due webhooks (``storage.webhook.deliver.deliver_due``). The lock
only spreads the work: a slow receiver can make one call outlast the lock, and then another
worker's call runs beside it, which is safe because every attempt is claimed in the database
first. Running in the parent, a slow or dead receiver never delays a batch.

Like the reconciler, it is a ``worker.periodic.Periodic`` thread (its own engine and client).
"""

from __future__ import annotations

import logging

import redis

from storage.sql.db import Database
from storage.core.settings import Settings
from storage.webhook.deliver import deliver_due
from worker.periodic import Periodic

log = logging.getLogger("shiti.notifier")


def lock_key(settings: Settings) -> str:
    """The Redis key that elects one notifier per interval (per deployment queue)."""
    return f"shiti:notify-lock:{settings.queue}"


def notify_once(settings: Settings, *, db: Database, client: redis.Redis) -> dict[str, int] | None:
    """Send the due webhooks if this process wins the interval's lock.

    Returns:
        deliver_due's counts, or None when another worker holds the lock.
    """
    ttl = max(1, round(settings.notify_interval))
    if not client.set(lock_key(settings), "1", nx=True, ex=ttl):
        return None
    return deliver_due(settings, db)


class Notifier(Periodic):
    """Daemon thread: deliver due completion webhooks every ``notify_interval`` until stopped (a
    delivery in flight finishes or times out first)."""

    def __init__(self, settings: Settings, broker_url: str) -> None:
        super().__init__(settings, broker_url, name="shiti-notifier", interval=settings.notify_interval)

    def tick(self, db: Database, client: redis.Redis, *, first: bool) -> None:
        counts = notify_once(self.settings, db=db, client=client)
        if counts and any(counts.values()):
            log.info("webhooks: %s", counts)
