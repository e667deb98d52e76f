"""The worker parent's announcer: says on the broker which model this worker serves
(``storage.presence``), every ``settings.presence_seconds``, and withdraws at shutdown."""

from __future__ import annotations

import logging
import threading

import redis

from storage.models import ModelInfo
from storage.presence import Presence, announce, withdraw
from storage.settings import Settings

log = logging.getLogger("shiti.presence")


class Announcer(threading.Thread):
    """Daemon thread announcing ``model`` for ``node`` until stopped."""

    def __init__(self, settings: Settings, broker_url: str, *, node: str, model: ModelInfo) -> None:
        super().__init__(name="shiti-presence", daemon=True)
        self.settings = settings
        self.client = redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5)
        self.presence = Presence(node=node, model=model.name, content_hash=model.content_hash,
                                 labels=list(model.labels))
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                announce(self.client, self.settings, self.presence)
            except redis.RedisError as exc:  # the broker is down: the next beat says it again
                log.warning("could not announce the model served (%s)", exc)
            self.stopped.wait(self.settings.presence_seconds)

    def stop(self) -> None:
        """Stop announcing and forget this worker at once (a clean shutdown)."""
        self.stopped.set()
        try:
            withdraw(self.client, self.settings, self.presence["node"])
        except redis.RedisError:
            pass  # it expires within three periods anyway
