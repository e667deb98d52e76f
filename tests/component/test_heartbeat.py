"""Lease renewal: fenced by the token, under any interleaving with takeovers and saves; the
heartbeat thread keeps a lease alive while a batch runs and stops when its work is gone."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from storage.sql import repo
from storage.sql.db import Database
from storage.core.domain import Outcome
from storage.sql.schema import document
from tests.component.test_repo import make_job
from worker.heartbeat import heartbeat

LEASE = 30.0


def _rows(db: Database, ids: list[int]) -> dict[int, tuple[str, str | None, float | None]]:
    with db.read() as conn:
        rows = conn.execute(select(document.c.id, document.c.status, document.c.lease_token,
                                   document.c.lease_expires_at).where(document.c.id.in_(ids)))
        return {int(r.id): (r.status, r.lease_token, r.lease_expires_at) for r in rows}


def test_renew_extends_only_its_own_processing_documents(db: Database) -> None:
    job_id, ids = make_job(db, ["北京", "上海", "广州"])
    (a,) = repo.claim(db, job_id=job_id, doc_ids=ids[:1], lease_seconds=LEASE, max_attempts=3, now=1000.0)
    (b,) = repo.claim(db, job_id=job_id, doc_ids=ids[1:2], lease_seconds=LEASE, max_attempts=3, now=1000.0)
    assert repo.renew(db, lease_token=a.lease_token, lease_seconds=LEASE, now=1020.0) == 1
    rows = _rows(db, ids)
    assert rows[ids[0]][2] == 1050.0 and rows[ids[1]][2] == 1030.0 and rows[ids[2]][0] == "pending"
    assert b.lease_token != a.lease_token


# An interleaving of two claimants over one document: "claim X at t" (succeeds only when the
# lease expired), "renew X at t", "save X at t". Whatever the order, a renewal never touches a
# document held under another token, and only the current holder's save lands.
OPS = st.lists(st.tuples(st.sampled_from(["claim", "renew", "save"]), st.sampled_from(["A", "B"]),
                         st.integers(0, 200)), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None)
@given(ops=OPS)
def test_renewals_and_saves_are_fenced_under_any_interleaving(tmp_path_factory, ops) -> None:
    from storage.sql.db import make_engine
    from storage.sql.schema import metadata

    path = tmp_path_factory.mktemp("hb") / "db.sqlite"
    db = Database(make_engine(f"sqlite:///{path}"))
    metadata.create_all(db.engine)
    job_id, (doc,) = make_job(db, ["北京"])
    tokens: dict[str, str] = {}
    clock = 0.0
    for op, who, dt in sorted(ops, key=lambda o: o[2]):
        clock = float(dt)
        before = _rows(db, [doc])[doc]
        if op == "claim":
            got = repo.claim(db, job_id=job_id, doc_ids=[doc], lease_seconds=LEASE, max_attempts=99, now=clock)
            if got:
                tokens[who] = got[0].lease_token
                # a claim succeeds only on a free document or an expired lease
                assert before[0] == "pending" or before[2] < clock
        elif op == "renew" and who in tokens:
            n = repo.renew(db, lease_token=tokens[who], lease_seconds=LEASE, now=clock)
            after = _rows(db, [doc])[doc]
            if before[1] != tokens[who] or before[0] != "processing":
                assert n == 0 and after == before  # fenced: someone else's (or no) lease is untouched
            else:
                assert n == 1 and after[2] == clock + LEASE
        elif op == "save" and who in tokens:
            saved = repo.save_outcomes(db, job_id=job_id, lease_token=tokens[who],
                                       outcomes=[Outcome(doc, 2)])
            holder = before[1] == tokens[who] and before[0] == "processing"
            assert saved["done"] == (1 if holder else 0)
    db.engine.dispose()


def test_heartbeat_keeps_the_lease_ahead_and_stops_when_the_work_is_gone(db: Database) -> None:
    job_id, ids = make_job(db, ["北京", "上海"])
    claimed = repo.claim(db, job_id=job_id, doc_ids=ids, lease_seconds=2, max_attempts=3)
    token = claimed[0].lease_token
    with heartbeat(db, lease_token=token, lease_seconds=2, interval=0.3) as beat:
        time.sleep(3.0)  # longer than the lease: without renewals it would have expired
        expiries = [r[2] for r in _rows(db, ids).values()]
        assert all(e > time.time() + 1.0 for e in expiries) and beat.renewals >= 5
        # Once the documents are finished, the next beat finds nothing under the token and ends
        repo.save_outcomes(db, job_id=job_id, lease_token=token,
                           outcomes=[Outcome(i, 2) for i in ids])
        beat.join(timeout=2)
        assert not beat.is_alive()
