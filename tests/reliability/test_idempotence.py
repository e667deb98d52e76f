"""Idempotence (docs/reliability.md §6.3): every task type run twice, sequentially and concurrently
(threads and forked processes), leaves identical rows. Storage level: SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from producer.service import submit_corpus
from storage.sql.db import Database, dispose_all, get_database
from storage.broker.dispatch import reconcile
from storage.sql.schema import document, entity, job
from storage.core.settings import Settings
from tests.helpers.fake_tagger import FakeTagger
from tests.reliability.helpers import make_texts
from worker.batch import run_batch

DOCS = make_texts(40, seed=9) + [{"id": "bad", "text": "张伟[[RAISE]]"}, {"id": "empty", "text": " "}]


def snapshot(db: Database) -> dict[str, Any]:
    """Rows a re-run must not change (lease tokens and timestamps excluded)."""
    with db.read() as conn:
        return {
            "entities": sorted(tuple(r) for r in conn.execute(select(
                entity.c.document_id, entity.c.start, entity.c.end, entity.c.label, entity.c.text, entity.c.score))),
            "documents": sorted(tuple(r) for r in conn.execute(select(
                document.c.id, document.c.status, document.c.reason, document.c.attempts, document.c.error))),
            "jobs": sorted(tuple(r) for r in conn.execute(select(
                job.c.status, job.c.total, job.c.done, job.c.failed, job.c.cancelled, job.c.chars_done))),
        }


def _setup(settings: Settings) -> tuple[str, list[int]]:
    job_id = submit_corpus(settings, [dict(d) for d in DOCS]).job_id  # no broker: stays pending
    with get_database(settings).read() as conn:
        ids = list(conn.execute(select(document.c.id).where(document.c.job_id == job_id)
                                .order_by(document.c.id)).scalars())
    return job_id, ids


def _batch(settings: Settings, job_id: str, ids: list[int]) -> None:
    run_batch(settings, job_id=job_id, doc_ids=ids, tagger=FakeTagger(delay=0.005), topup=False)


def _reconcile(settings: Settings, job_id: str, ids: list[int]) -> None:
    del job_id, ids
    reconcile(settings, publish_batches=False)


def _in_child(settings: Settings, job_id: str, ids: list[int], which: str) -> None:
    dispose_all()  # never reuse the parent's pooled connections after fork
    {"batch": _batch, "reconcile": _reconcile}[which](settings, job_id, ids)


TASKS: dict[str, Callable[[Settings, str, list[int]], None]] = {"batch": _batch, "reconcile": _reconcile}


def _twice(settings: Settings, how: str, which: str) -> dict[str, Any]:
    job_id, ids = _setup(settings)
    task = TASKS[which]
    if which == "reconcile":
        _batch(settings, job_id, ids[: len(ids) // 2])  # something to recount, half still pending
    if how == "sequential":
        task(settings, job_id, ids)
        task(settings, job_id, ids)
    elif how == "threads":
        threads = [threading.Thread(target=task, args=(settings, job_id, ids)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)
    else:
        ctx = multiprocessing.get_context("fork")
        procs = [ctx.Process(target=_in_child, args=(settings, job_id, ids, which)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0, 0]
    return snapshot(get_database(settings))


def _once(settings: Settings, which: str) -> dict[str, Any]:
    job_id, ids = _setup(settings)
    if which == "reconcile":
        _batch(settings, job_id, ids[: len(ids) // 2])
    TASKS[which](settings, job_id, ids)
    return snapshot(get_database(settings))


def test_every_task_twice_equals_once(settings: Settings) -> None:
    for which in TASKS:
        # Given a reference: the task run once on a fresh database
        reference = _once(_fresh(settings, f"ref-{which}"), which)
        for how in ("sequential", "threads", "processes"):
            # When it runs twice (one after the other, or at the same time) on a fresh database
            got = _twice(_fresh(settings, f"{which}-{how}"), how, which)
            # Then the rows are those of the single run
            assert got == reference, (which, how)
            dispose_all()


def _fresh(settings: Settings, tag: str) -> Settings:
    """A fresh empty database of the same dialect, so row ids line up with the reference's."""
    if not settings.database_url:
        return settings.replace(data_dir=settings.data_dir / tag)
    from tests.conftest import _fresh_pg_database

    return settings.replace(database_url=_fresh_pg_database(settings.database_url.rsplit("/", 1)[0] + "/postgres"))
