"""The periodic reconciler, run by a daemon thread in every worker parent.

Every ``settings.reconcile_interval`` seconds each worker tries ``SET <lock> NX EX <interval>``
on the broker; the one that wins runs ``storage.broker.dispatch.reconcile`` (stale documents back to
pending, counters recounted, queue topped up). So with N workers the reconciler runs about
once per interval, never twice at once, and keeps running while any worker lives.

It is a ``worker.periodic.Periodic`` thread: its own engine and Redis client, never a cache shared
with pool children.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import redis

from storage.sql.db import Database
from storage.broker.dispatch import reconcile
from storage.core.settings import Settings
from worker.periodic import Periodic

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


class Reconciler(Periodic):
    """Daemon thread: reconcile at start, then every interval under the Redis lock."""

    def __init__(self, settings: Settings, broker_url: str) -> None:
        super().__init__(settings.replace(redis_url=broker_url), broker_url, name="shiti-reconciler",
                         interval=settings.reconcile_interval)

    def tick(self, db: Database, client: redis.Redis, *, first: bool) -> None:
        # Documents left pending by a submit that could not reach Redis are sent as soon as any
        # worker comes up.
        result = reconcile_once(self.settings, db=db, client=client, force=first)
        if result is not None:
            log.info("reconcile: %s", result)

    def pause(self) -> float:
        # Jitter so the workers' attempts spread over the interval.
        return self.interval * random.uniform(0.5, 1.0)
