"""The worker parent's announcer: says on the broker which model this worker serves
(``storage.broker.presence``), every ``settings.presence_seconds``, and withdraws at shutdown.

A ``worker.periodic.Periodic`` thread like the reconciler and the notifier: its own Redis client,
a failed beat (broker down) logged and said again next period.
"""

from __future__ import annotations

import redis

from storage.broker.presence import announce, withdraw
from storage.catalog import ModelInfo
from storage.core.settings import Settings
from storage.core.views import Presence
from storage.sql.db import Database
from worker.periodic import Periodic


class Announcer(Periodic):
    """Announces ``model`` for ``node`` every presence period until stopped."""

    def __init__(self, settings: Settings, broker_url: str, *, node: str, model: ModelInfo) -> None:
        super().__init__(settings, broker_url, name="shiti-presence", interval=settings.presence_seconds)
        self.presence = Presence(node=node, model=model.name, content_hash=model.content_hash,
                                 labels=list(model.labels))

    def tick(self, db: Database, client: redis.Redis, *, first: bool) -> None:
        announce(client, self.settings, self.presence)

    def stop(self) -> None:
        """Stop announcing and forget this worker at once (a clean shutdown), on a client of the
        caller's own; a beat under way finishes first, so it cannot re-announce after."""
        super().stop()
        if self.is_alive():
            self.join(timeout=2.0)
        client = redis.Redis.from_url(self.broker_url, socket_timeout=5, socket_connect_timeout=5)
        try:
            withdraw(client, self.settings, self.presence["node"])
        except redis.RedisError:
            pass  # it expires within three periods anyway
        finally:
            client.close()
