"""The periodic reconciler, run by a daemon thread in every worker parent.

Every ``settings.reconcile_interval`` seconds each worker tries ``SET <lock> NX EX <interval>``
on the broker; the one that wins runs ``storage.dispatch.reconcile`` (stale documents back to
pending, counters recounted, queue topped up). So with N workers the reconciler runs about
once per interval, never twice at once, and keeps running while any worker lives.

The thread never touches module-level caches shared with pool children (it builds its own
engine and Redis client): a child forked while the thread holds a lock must not inherit it.
"""

from __future__ import annotations

import logging
import random
import threading
from typing import Any

import redis

from storage.db import Database, make_engine
from storage.dispatch import reconcile
from storage.settings import Settings

log = logging.getLogger("shiti.reconciler")


def lock_key(settings: Settings) -> str:
    """The Redis key that elects one reconciler per interval (per queue)."""
    return f"shiti:reconcile-lock:{settings.queue}"


def reconcile_once(settings: Settings, *, db: Database, client: redis.Redis, force: bool = False) -> dict[str, Any] | None:
    """Run ``reconcile`` if this process wins the interval's lock (or ``force``).

    Returns:
        reconcile's summary, or None when another worker holds the lock.
    """
    ttl = max(1, int(round(settings.reconcile_interval or 1)))
    won = client.set(lock_key(settings), "1", nx=True, ex=ttl)
    if not (won or force):
        return None
    return reconcile(settings, db=db)


class Reconciler(threading.Thread):
    """Daemon thread: reconcile at start, then every interval under the Redis lock."""

    def __init__(self, settings: Settings, broker_url: str) -> None:
        super().__init__(name="shiti-reconciler", daemon=True)
        self.settings = settings
        self.broker_url = broker_url
        self.stopped = threading.Event()

    def run(self) -> None:
        s = self.settings
        db = Database(make_engine(s.sqlalchemy_url, busy_timeout_ms=s.busy_timeout_ms))
        client = redis.Redis.from_url(self.broker_url, socket_timeout=10, socket_connect_timeout=5)
        settings = s.replace(redis_url=self.broker_url)
        first = True
        while not self.stopped.is_set():
            try:
                # Documents left pending by a submit that could not reach Redis are sent as
                # soon as any worker comes up.
                result = reconcile_once(settings, db=db, client=client, force=first)
                if result is not None:
                    log.info("reconcile: %s", result)
                first = False
            except Exception as exc:  # broker or database down: try again next interval
                log.warning("reconcile failed (%s); trying again in %.0f s", exc, s.reconcile_interval)
            if s.reconcile_interval <= 0:
                break
            # Jitter so the workers' attempts spread over the interval.
            self.stopped.wait(s.reconcile_interval * random.uniform(0.5, 1.0))
        db.engine.dispose()

    def stop(self) -> None:
        self.stopped.set()
