"""The completion-webhook notifier, run by a daemon thread in every worker parent.

Every ``settings.notify_interval`` seconds each worker tries ``SET <lock> NX EX <interval>`` on
the broker; the one that wins sends the due webhooks (``storage.webhooks.deliver_due``). The lock
only spreads the work: a slow receiver can make one call outlast the lock, and then another
worker's call runs beside it, which is safe because every attempt is claimed in the database
first. Running in the parent, a slow or dead receiver never delays a batch.

Like the reconciler, the thread builds its own engine and Redis client: a pool child forked
while the thread holds a lock of a shared cache must not inherit it.
"""

from __future__ import annotations

import logging
import threading

import redis

from storage.db import Database, make_engine
from storage.settings import Settings
from storage.webhooks import deliver_due

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


class Notifier(threading.Thread):
    """Daemon thread: deliver due completion webhooks every ``notify_interval`` until stopped."""

    def __init__(self, settings: Settings, broker_url: str) -> None:
        super().__init__(name="shiti-notifier", daemon=True)
        self.settings = settings
        self.broker_url = broker_url
        self.stopped = threading.Event()

    def run(self) -> None:
        s = self.settings
        db = Database(make_engine(s.sqlalchemy_url, busy_timeout_ms=s.busy_timeout_ms))
        client = redis.Redis.from_url(self.broker_url, socket_timeout=10, socket_connect_timeout=5)
        try:
            while not self.stopped.is_set():
                try:
                    counts = notify_once(s, db=db, client=client)
                    if counts and any(counts.values()):
                        log.info("webhooks: %s", counts)
                except Exception as exc:  # noqa: BLE001 - broker or database down: try again next tick
                    log.warning("webhook delivery failed (%s); trying again in %.0f s", exc, s.notify_interval)
                self.stopped.wait(s.notify_interval)
        finally:
            db.engine.dispose()
            client.close()

    def stop(self) -> None:
        """Stop after the current tick (a delivery in flight finishes or times out first)."""
        self.stopped.set()
