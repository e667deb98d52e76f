"""Prometheus text exposition for ``GET /metrics`` (no client library: the format is simple).

Gauges read at scrape time from the store (``storage.sql.queries``) and the broker:
jobs by state, documents by status, documents/s and characters/s over a trailing window, and
the broker queue depth (waiting batches) plus in-flight (unacked) batches.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import redis

from storage.sql.db import get_database
from storage.broker.presence import live_workers
from storage.broker.queue import queue_for, waiting_by_queue
from storage.broker.redis_server import broker_url
from storage.sql import queries
from storage.core.settings import Settings

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RATE_WINDOW = 60.0  # seconds; rates are completions in the trailing window / its length


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _value(v: float) -> str:
    if v != v:  # NaN: the exposition format spells it "NaN"
        return "NaN"
    return f"{v:g}"


def _family(name: str, help_text: str, kind: str, samples: Iterable[tuple[dict[str, str], float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{label_text}}} {_value(value)}" if label_text else f"{name} {_value(value)}")
    return lines


def _queue(settings: Settings) -> tuple[float, dict[str, int], float, dict[str, int]]:
    """``(up, waiting batches by queue, unacked batches, live workers by model)``; ``(0, {}, nan, {})``
    when Redis is unreachable."""
    try:
        client = redis.Redis.from_url(broker_url(settings), socket_timeout=2, socket_connect_timeout=2)
        with client:
            waiting = waiting_by_queue(client, settings)
            unacked = client.hlen("unacked")  # kombu's in-flight ledger for acks_late messages
            workers: dict[str, int] = {}
            for p in live_workers(client, settings):
                workers[p["model"]] = workers.get(p["model"], 0) + 1
        return 1.0, waiting, float(unacked), workers
    except Exception:  # metrics must answer even when the broker is down: report it as down
        return 0.0, {}, float("nan"), {}


def render(settings: Settings, *, now: float | None = None) -> str:
    """The whole scrape body."""
    db = get_database(settings)
    now = time.time() if now is None else now
    jobs, docs = queries.counts_by_state(db)
    recent_docs, recent_chars = queries.completions_since(db, now - RATE_WINDOW)
    up, waiting, unacked, workers = _queue(settings)
    depth: dict[str, float] = {q: float(n) for q, n in waiting.items()}
    if not up:  # say the default model's queue depth is unknown rather than leave the family empty
        depth = {queue_for(settings, settings.model_name): float("nan")}
    lines: list[str] = []
    lines += _family("shiti_jobs", "Jobs by state.", "gauge", (({"state": s}, n) for s, n in jobs.items()))
    lines += _family("shiti_documents", "Documents by status.", "gauge",
                     (({"status": s}, n) for s, n in docs.items()))
    lines += _family("shiti_documents_per_second",
                     f"Documents finished (done or failed) per second over the last {RATE_WINDOW:g} s.",
                     "gauge", [({}, int(recent_docs) / RATE_WINDOW)])
    lines += _family("shiti_chars_per_second",
                     f"Characters of finished documents per second over the last {RATE_WINDOW:g} s.",
                     "gauge", [({}, int(recent_chars) / RATE_WINDOW)])
    lines += _family("shiti_broker_up", "1 when the Redis broker answered this scrape.", "gauge", [({}, up)])
    lines += _family("shiti_queue_depth", "Batches waiting in each model's broker queue.", "gauge",
                     [({"queue": q}, n) for q, n in depth.items()])
    lines += _family("shiti_workers", "Live workers by the model they serve.", "gauge",
                     [({"model": m}, n) for m, n in sorted(workers.items())])
    lines += _family("shiti_queue_unacked", "Batches delivered to workers and not yet acknowledged.",
                     "gauge", [({}, unacked)])
    return "\n".join(lines) + "\n"
