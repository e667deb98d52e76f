"""One state machine: random sequences of the repository's operations (claim, save, release,
lease expiry, dispatch, cancel, retry, recount) on a small job move every document and the job
only along the edges of ``storage/core/domain.py``'s transition tables, and a job whose documents are
all terminal ends in ``final_job_status``. SQLite (the fast path; the operations are the same SQL
on PostgreSQL, covered by tests/component/test_repo.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from storage.sql import repo
from storage.sql.db import Database, dispose_all, get_database
from storage.core.domain import (
    DOC_TERMINAL,
    DOC_TRANSITIONS,
    JOB_TERMINAL,
    JOB_TRANSITIONS,
    DocumentStatus,
    JobStatus,
    Outcome,
    final_job_status,
)
from storage.core.errors import InvalidTransition
from storage.sql.schema import document, job
from storage.core.settings import Settings
from tests.component.test_repo import make_job

N_DOCS = 5
OPS = ("dispatch", "unqueue", "claim", "claim_as_owner", "save_done", "save_failed", "release", "release_refund",
       "expire", "cancel", "retry", "recount")


def _snapshot(db: Database, job_id: str) -> tuple[JobStatus, dict[int, DocumentStatus]]:
    with db.read() as conn:
        state = JobStatus(conn.execute(select(job.c.status).where(job.c.id == job_id)).scalar_one())
        docs = {int(i): DocumentStatus(s) for i, s in conn.execute(
            select(document.c.id, document.c.status).where(document.c.job_id == job_id))}
    return state, docs


def _apply(db: Database, job_id: str, ids: list[int], op: str, pick: list[int], tokens: list[str],
           clock: list[float]) -> None:
    chosen = [ids[i] for i in pick] or ids[:1]
    if op == "dispatch":
        repo.mark_queued(db, chosen)
    elif op == "unqueue":
        repo.unqueue(db, chosen)
    elif op in ("claim", "claim_as_owner"):
        owner = "message-1" if op == "claim_as_owner" else None
        got = repo.claim(db, job_id=job_id, doc_ids=chosen, lease_seconds=10, max_attempts=2, owner=owner,
                         now=clock[0])
        tokens.extend(c.lease_token for c in got[:1])
    elif op in ("save_done", "save_failed") and tokens:
        error = "boom" if op == "save_failed" else None
        repo.save_outcomes(db, job_id=job_id, lease_token=tokens[-1],
                           outcomes=[Outcome(i, 1, (), error=error) for i in chosen])
    elif op in ("release", "release_refund") and tokens:
        repo.release(db, doc_ids=chosen, lease_token=tokens[-1], refund=op == "release_refund")
    elif op == "expire":
        clock[0] += 60  # every lease taken so far has expired
        repo.requeue_stale(db, stale_queued_after=30, now=clock[0])
    elif op == "cancel":
        try:
            repo.cancel_job(db, job_id)
        except InvalidTransition:
            pass
    elif op == "retry":
        try:
            repo.retry_failed(db, job_id)
        except InvalidTransition:
            pass
    elif op == "recount":
        repo.recount(db, job_id)


@pytest.fixture
def db(tmp_path: Path) -> Any:
    yield get_database(Settings(data_dir=tmp_path / "data"))
    dispose_all()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(OPS), st.lists(st.integers(0, N_DOCS - 1), max_size=N_DOCS, unique=True)),
                min_size=1, max_size=30))
def test_every_operation_follows_an_edge_of_the_state_machine(db: Database, steps: list[tuple[str, list[int]]]) -> None:
    import time

    job_id, ids = make_job(db, ["北京很大。"] * N_DOCS)
    tokens: list[str] = []
    clock = [time.time()]
    before = _snapshot(db, job_id)
    was_cancelling = False
    for op, pick in steps:
        _apply(db, job_id, ids, op, pick, tokens, clock)
        after = _snapshot(db, job_id)
        (old_job, old_docs), (new_job, new_docs) = before, after
        assert new_job == old_job or new_job in JOB_TRANSITIONS[old_job], (op, old_job, new_job)
        for i, new in new_docs.items():
            old = old_docs[i]
            assert new == old or new in DOC_TRANSITIONS[old], (op, i, old, new)
        was_cancelling = was_cancelling or new_job in (JobStatus.CANCELLING, JobStatus.CANCELLED)
        if new_job == JobStatus.RUNNING:
            was_cancelling = False  # a retry re-opened it
        statuses = list(new_docs.values())
        if all(s in DOC_TERMINAL for s in statuses):
            # A job whose documents are all terminal is finished, in the state the table says.
            assert new_job in JOB_TERMINAL, (op, new_job, statuses)
            assert new_job == final_job_status(done=statuses.count(DocumentStatus.DONE),
                                               failed=statuses.count(DocumentStatus.FAILED),
                                               cancelling=was_cancelling), (op, new_job, statuses)
        before = after
