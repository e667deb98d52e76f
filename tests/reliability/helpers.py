"""Shared pieces of the reliability tests: short-timeout settings, corpora, DB probes."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from storage.sql.db import get_database
from storage.broker.redis_server import RedisServer
from storage.sql.schema import document, entity, job
from storage.core.settings import Settings
from tests.helpers.fake_tagger import NAMES, FakeTagger

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHAOS_MODEL = "py:tests.helpers.fake_tagger:make_chaos_tagger"
FAKE_MODEL = "py:tests.helpers.fake_tagger:make_tagger"
FILLER = "今天的会议讨论了经济发展和城市建设等问题，代表们认为应当继续推进改革。"


def short_settings(tmp_path: Path, server: RedisServer, **kw: Any) -> Settings:
    """Test timing: VT 12 s, lease 8 s (< VT) renewed every 2 s, soft/hard limits 4/6 s, sweeps every second,
    reconcile every 2 s."""
    base: dict[str, Any] = dict(
        data_dir=tmp_path / "data", redis_url=server.url, model=CHAOS_MODEL, queue=f"q-{uuid.uuid4().hex[:8]}",
        batch_docs=16, batch_chars=20_000, high_water=4, visibility_timeout=12, lease_seconds=8,
        heartbeat_seconds=2, soft_time_limit=4, time_limit=6, unacked_restore_interval=1, unacked_restore_throttle=1,
        reconcile_interval=2, proc_alive_timeout=60, doc_deadline_base=2.0,
    )
    base.update(kw)
    return Settings(**base)


def make_texts(n: int, *, seed: int = 7) -> list[dict[str, str]]:
    """``n`` deterministic documents mixing known names with filler (~40-160 chars)."""
    rng = random.Random(seed)
    names = [name for group in NAMES.values() for name in group]
    docs = []
    for i in range(n):
        parts = []
        for _ in range(rng.randint(1, 4)):
            parts.append(FILLER[: rng.randint(5, len(FILLER))])
            parts.append(rng.choice(names))
        docs.append({"id": f"doc-{i:05d}", "text": "".join(parts) + "。"})
    return docs


def write_jsonl(path: Path, docs: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    return path


def reference_entities(docs: list[dict[str, str]]) -> Counter[tuple[str, int, int, str, str]]:
    """The entity multiset the fake model gives for ``docs`` in one clean in-process call."""
    found = FakeTagger().annotate([d["text"] for d in docs])
    return Counter((d["id"], e.start, e.end, e.label, e.text) for d, ents in zip(docs, found) for e in ents)


def doc_rows(settings: Settings, job_id: str) -> list[dict[str, Any]]:
    with get_database(settings).read() as conn:
        rows = conn.execute(select(document.c.id, document.c.ext_id, document.c.status, document.c.reason,
                                   document.c.attempts, document.c.updated_at, document.c.error)
                            .where(document.c.job_id == job_id).order_by(document.c.id))
        return [dict(r._mapping) for r in rows]


def duplicate_rows(settings: Settings, job_id: str) -> int:
    """``count(*) - count(distinct document_id, start, end, label)`` of the job's entities."""
    with get_database(settings).read() as conn:
        total = conn.execute(select(func.count()).select_from(entity).where(entity.c.job_id == job_id)).scalar()
        distinct = conn.execute(select(func.count()).select_from(
            select(entity.c.document_id, entity.c.start, entity.c.end, entity.c.label)
            .where(entity.c.job_id == job_id).distinct().subquery())).scalar()
    return int(total) - int(distinct)


def job_row(settings: Settings, job_id: str) -> dict[str, Any]:
    with get_database(settings).read() as conn:
        return dict(conn.execute(select(job).where(job.c.id == job_id)).one()._mapping)


def wait_until(predicate: Any, *, timeout: float, poll: float = 0.1, what: str = "condition") -> float:
    """Poll ``predicate`` until truthy; returns the monotonic time it became true."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached after {timeout} s")
        time.sleep(poll)
