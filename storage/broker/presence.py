"""Which models live workers serve: each worker parent announces its model on the broker.

Every ``settings.presence_seconds`` a worker sets ``shiti:presence:<queue>:<node>`` (a JSON
object: model name, content hash, labels, node) with a time-to-live of three periods, and deletes
it when it stops; a worker that dies silently drops out within the TTL. Readers (job status, the
API, ``shiti model list``) scan those keys: a job whose model no live worker serves says so
instead of waiting silently, and an API host without model files learns the served models here.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from storage.broker.redis_server import broker_url, cached_client
from storage.core.settings import Settings
from storage.core.views import Presence


def _prefix(settings: Settings) -> str:
    return f"shiti:presence:{settings.queue}:"


def announce(client: redis.Redis, settings: Settings, presence: Presence) -> None:
    """Say (again) that ``presence["node"]`` serves ``presence["model"]``, for three periods."""
    ttl = max(1, int(round(settings.presence_seconds * 3)))
    client.set(_prefix(settings) + presence["node"], json.dumps(presence), ex=ttl)


def withdraw(client: redis.Redis, settings: Settings, node: str) -> None:
    """Forget ``node`` at once (a clean shutdown)."""
    client.delete(_prefix(settings) + node)


def live_workers(client: redis.Redis, settings: Settings) -> list[Presence]:
    """Announcements of the workers alive now, by node name."""
    keys = sorted(client.scan_iter(match=_prefix(settings) + "*", count=500))
    out: list[Presence] = []
    for raw in client.mget(keys) if keys else []:
        if raw is None:
            continue  # expired between SCAN and MGET
        try:
            data: Any = json.loads(raw)
        except ValueError:
            continue
        if isinstance(data, dict) and {"node", "model", "content_hash"} <= data.keys():
            out.append(Presence(node=str(data["node"]), model=str(data["model"]),
                                content_hash=str(data["content_hash"]), labels=list(data.get("labels") or [])))
    return out


def live_or_none(settings: Settings) -> list[Presence] | None:
    """Live workers' announcements, or None when the broker does not answer (unknown, not "none")."""
    try:
        # Short timeouts: job status asks on every poll and must not stall on a lost broker.
        return live_workers(cached_client(broker_url(settings), timeout=1), settings)
    except Exception:  # no broker configured, or it is down
        return None
