"""Helpers for end-to-end tests: corpora, waiting, snapshots of the stored results."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import func, select

from producer.service import wait_job
from storage.sql.db import get_database
from storage.broker.queue import waiting_by_queue
from storage.sql.schema import document, entity
from storage.core.settings import Settings

SAMPLE = Path(__file__).resolve().parents[2] / "producer" / "samples" / "news.jsonl"
LONG_TAIL = "年终，新华社记者在北京采访了清华大学的张伟。"


def write_corpus(path: Path, *, n: int = 120, long_chars: int = 6000) -> list[dict[str, str]]:
    """``n`` sample news documents plus one ``long_chars``-character document whose entities
    sit near its end (so windows past the first are exercised)."""
    docs = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()][:n]
    filler = "".join(d["text"] for d in docs)
    while len(filler) < long_chars:
        filler += filler
    docs.append({"id": "long-6000", "text": filler[: long_chars - len(LONG_TAIL)] + LONG_TAIL})
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    return docs


def wait_terminal(settings: Settings, job_id: str, *, timeout: float) -> dict[str, Any]:
    return wait_job(settings, job_id, timeout=timeout, poll=0.2)


def wait_drained(settings: Settings, *, timeout: float) -> None:
    """Wait until the queue is empty and nothing is in flight (kombu's ``unacked`` hash)."""
    r = redis.Redis.from_url(settings.redis_url)
    deadline = time.monotonic() + timeout
    while sum(waiting_by_queue(r, settings).values()) or r.hlen("unacked"):
        if time.monotonic() > deadline:
            raise TimeoutError("queue not drained")
        time.sleep(0.1)


def stored_entities(settings: Settings, job_id: str) -> Counter[tuple[str, int, int, str, str]]:
    db = get_database(settings)
    with db.read() as conn:
        rows = conn.execute(
            select(document.c.ext_id, entity.c.start, entity.c.end, entity.c.label, entity.c.text)
            .join(document, document.c.id == entity.c.document_id).where(entity.c.job_id == job_id))
        return Counter(tuple(r) for r in rows)


def stored_rows(settings: Settings, job_id: str) -> dict[str, Any]:
    """Everything a re-run must leave unchanged."""
    db = get_database(settings)
    with db.read() as conn:
        ents = sorted(tuple(r) for r in conn.execute(select(entity).where(entity.c.job_id == job_id)))
        docs = sorted(tuple(r) for r in conn.execute(
            select(document.c.id, document.c.status, document.c.attempts, document.c.reason)
            .where(document.c.job_id == job_id)))
        dup = conn.execute(select(func.count()).select_from(
            select(entity.c.document_id, entity.c.start, entity.c.end, entity.c.label)
            .where(entity.c.job_id == job_id)
            .group_by(entity.c.document_id, entity.c.start, entity.c.end, entity.c.label)
            .having(func.count() > 1).subquery())).scalar()
    return {"entities": ents, "documents": docs, "duplicates": dup}
