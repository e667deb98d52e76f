"""The worker parent's periodic daemon threads (reconciler, notifier): one ``tick`` every interval
on the thread's own database engine and Redis client, until stopped.

A thread never touches module-level caches shared with pool children (it builds its own engine
and client): a child forked while the thread holds a lock must not inherit it. A failing tick
(broker or database down) is logged and tried again next interval; it never ends the thread.
"""

from __future__ import annotations

import logging
import threading

import redis

from storage.sql.db import Database, make_engine
from storage.core.settings import Settings

log = logging.getLogger("shiti.periodic")


class Periodic(threading.Thread):
    """Runs :meth:`tick` now and then every :meth:`pause` seconds; ``interval`` <= 0: once."""

    def __init__(self, settings: Settings, broker_url: str, *, name: str, interval: float) -> None:
        super().__init__(name=name, daemon=True)
        self.settings = settings
        self.broker_url = broker_url
        self.interval = interval
        self.stopped = threading.Event()

    def tick(self, db: Database, client: redis.Redis, *, first: bool) -> None:
        """One round of the thread's work."""
        raise NotImplementedError

    def pause(self) -> float:
        """Seconds until the next tick."""
        return self.interval

    def run(self) -> None:
        s = self.settings
        db = Database(make_engine(s.sqlalchemy_url, busy_timeout_ms=s.busy_timeout_ms))
        client = redis.Redis.from_url(self.broker_url, socket_timeout=10, socket_connect_timeout=5)
        first = True
        try:
            while not self.stopped.is_set():
                try:
                    self.tick(db, client, first=first)
                    first = False
                except Exception as exc:  # noqa: BLE001 - broker or database down: try again next interval
                    log.warning("%s failed (%s); trying again in %.0f s", self.name, exc, self.interval)
                if self.interval <= 0:
                    break
                self.stopped.wait(self.pause())
        finally:
            db.engine.dispose()
            client.close()

    def stop(self) -> None:
        """Stop after the current tick."""
        self.stopped.set()
