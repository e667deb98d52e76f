"""Storage functions on SQLite and PostgreSQL: ingest, claim, fenced save, counters, queries."""

from __future__ import annotations

from sqlalchemy import func, select, update

from storage.sql import queries, repo
from storage.sql.db import Database
from storage.core.domain import Entity, Outcome
from storage.sql.schema import document, entity, job


def make_job(db: Database, texts: list[str], *, token: str | None = None) -> tuple[str, list[int]]:
    job_id, _ = repo.create_job(db, name="t", client_token=token)
    repo.insert_documents(db, job_id, [
        {"ext_id": f"d{i}", "line": i + 1, "text": t, "n_chars": len(t), "status": "pending"}
        for i, t in enumerate(texts)
    ])
    repo.seal_job(db, job_id)
    with db.read() as conn:
        ids = list(conn.execute(select(document.c.id).where(document.c.job_id == job_id)
                                .order_by(document.c.id)).scalars())
    return job_id, ids


def ents(text: str, word: str, label: str = "LOC") -> tuple[Entity, ...]:
    i = text.index(word)
    return (Entity(i, i + len(word), label, word, 0.9),)


def test_claim_commits_lease_and_attempts_and_skips_leased(db: Database) -> None:
    job_id, ids = make_job(db, ["北京很大", "上海很美"])
    first = repo.claim(db, job_id=job_id, doc_ids=ids, lease_seconds=60, max_attempts=3)
    assert [c.attempts for c in first] == [1, 1]
    assert queries.get_job(db, job_id)["status"] == "running"
    # A duplicate delivery while the lease is live claims nothing.
    assert repo.claim(db, job_id=job_id, doc_ids=ids, lease_seconds=60, max_attempts=3) == []
    # After the lease expires, the document can be claimed again (attempt 2).
    later = repo.claim(db, job_id=job_id, doc_ids=ids, lease_seconds=60, max_attempts=3,
                       now=first[0].attempts + 10**10)
    assert [c.attempts for c in later] == [2, 2]


def test_fenced_save_drops_the_stale_holder(db: Database) -> None:
    job_id, ids = make_job(db, ["北京很大"])
    (old,) = repo.claim(db, job_id=job_id, doc_ids=ids, lease_seconds=60, max_attempts=3)
    (new,) = repo.claim(db, job_id=job_id, doc_ids=ids, lease_seconds=60, max_attempts=3, now=10**10)
    stale = repo.save_outcomes(db, job_id=job_id, lease_token=old.lease_token,
                               outcomes=[Outcome(old.id, old.n_chars, ents(old.text, "北京"))])
    assert stale == {"done": 0, "failed": 0, "fenced": 1, "cancelled": 0}
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(entity)).scalar() == 0
    fresh = repo.save_outcomes(db, job_id=job_id, lease_token=new.lease_token,
                               outcomes=[Outcome(new.id, new.n_chars, ents(new.text, "北京"))])
    assert fresh["done"] == 1
    # Saving again (a duplicate run that kept the token) changes nothing.
    again = repo.save_outcomes(db, job_id=job_id, lease_token=new.lease_token,
                               outcomes=[Outcome(new.id, new.n_chars, ents(new.text, "北京"))])
    assert again == {"done": 0, "failed": 0, "fenced": 1, "cancelled": 0}
    j = queries.get_job(db, job_id)
    assert (j["done"], j["chars_done"], j["status"]) == (1, 4, "succeeded")
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(entity)).scalar() == 1


def test_counters_equal_recount_and_terminal_state(db: Database) -> None:
    job_id, ids = make_job(db, ["北京", "上海", "广州"])
    claimed = repo.claim(db, job_id=job_id, doc_ids=ids, lease_seconds=60, max_attempts=3)
    token = claimed[0].lease_token
    repo.save_outcomes(db, job_id=job_id, lease_token=token, outcomes=[
        Outcome(claimed[0].id, 2, ents("北京", "北京")),
        Outcome(claimed[1].id, 2, error="RuntimeError: boom"),
    ])
    mid = queries.get_job(db, job_id)
    assert (mid["done"], mid["failed"], mid["status"], mid["processing"]) == (1, 1, "running", 1)
    repo.save_outcomes(db, job_id=job_id, lease_token=token, outcomes=[Outcome(claimed[2].id, 2)])
    j = queries.get_job(db, job_id)
    assert j["status"] == "partially_failed" and j["finished_at"] is not None
    before = {k: j[k] for k in ("total", "done", "failed", "cancelled", "chars_total", "chars_done")}
    # Corrupt the counters; recount repairs them from the document rows.
    with db.write() as conn:
        conn.execute(update(job).where(job.c.id == job_id).values(done=99, failed=0))
    assert repo.recount(db, job_id) == before


def test_poison_after_max_attempts(db: Database) -> None:
    job_id, ids = make_job(db, ["北京", "上海"])
    now = 0.0
    for attempt in range(1, 4):
        now += 1000
        got = repo.claim(db, job_id=job_id, doc_ids=ids[:1], lease_seconds=60, max_attempts=3, now=now)
        assert [c.attempts for c in got] == [attempt]  # then the "worker dies": no save
    assert repo.claim(db, job_id=job_id, doc_ids=ids[:1], lease_seconds=60, max_attempts=3, now=now + 1000) == []
    doc = queries.get_document(db, job_id, "d0")
    assert (doc["state"], doc["reason"], doc["attempts"]) == ("failed", "poison", 3)  # tries that ran
    (other,) = repo.claim(db, job_id=job_id, doc_ids=ids[1:], lease_seconds=60, max_attempts=3)
    repo.save_outcomes(db, job_id=job_id, lease_token=other.lease_token, outcomes=[Outcome(other.id, 2)])
    assert queries.get_job(db, job_id)["status"] == "partially_failed"


def test_all_rejected_or_empty_job_finishes_at_seal(db: Database) -> None:
    job_id, _ = repo.create_job(db)
    repo.insert_documents(db, job_id, [
        {"ext_id": "e", "line": 1, "text": " ", "n_chars": 1, "status": "done", "reason": "empty"},
        {"ext_id": "x", "line": 2, "text": "", "n_chars": 0, "status": "failed", "reason": "decode_error"},
    ])
    repo.seal_job(db, job_id)
    j = queries.get_job(db, job_id)
    assert (j["status"], j["total"], j["done"], j["failed"]) == ("partially_failed", 2, 1, 1)


def test_client_token_and_duplicate_ids(db: Database) -> None:
    job_a, created = repo.create_job(db, client_token="tok")
    job_b, created_b = repo.create_job(db, client_token="tok")
    assert created and not created_b and job_a == job_b
    row = {"ext_id": "same", "line": 1, "text": "北京", "n_chars": 2, "status": "pending"}
    # Line 2 is a second copy of the id: a failed duplicate_id row; line 1 read again is skipped.
    assert repo.insert_documents(db, job_a, [row, {**row, "line": 2}]) == 1
    assert repo.insert_documents(db, job_a, [row]) == 0
    assert repo.insert_documents(db, job_a, [{**row, "line": 2}]) == 1  # read again: stored once
    assert repo.seal_job(db, job_a) | {} == repo.recount(db, job_a)
    assert repo.recount(db, job_a)["total"] == 2 and repo.recount(db, job_a)["failed"] == 1


def test_dispatch_marks_queued_once(db: Database) -> None:
    job_id, ids = make_job(db, ["a", "b", "c"])
    assert repo.next_pending(db, job_id, limit=2) == [(ids[0], 1), (ids[1], 1)]
    assert repo.mark_queued(db, ids[:2]) == ids[:2]
    assert repo.mark_queued(db, ids) == ids[2:]  # a racing dispatcher gets only what is left
    assert repo.unqueue(db, ids[2:]) == 1
    assert repo.requeue_stale(db, stale_queued_after=-1) == 2  # "old" queued rows come back
    assert len(repo.next_pending(db, job_id, limit=10)) == 3


def test_cancel_and_retry(db: Database) -> None:
    job_id, ids = make_job(db, ["北京", "上海", "广州"])
    (c0,) = repo.claim(db, job_id=job_id, doc_ids=ids[:1], lease_seconds=60, max_attempts=3)
    assert repo.cancel_job(db, job_id) == "cancelling"
    assert repo.claim(db, job_id=job_id, doc_ids=ids[1:], lease_seconds=60, max_attempts=3) == []
    repo.save_outcomes(db, job_id=job_id, lease_token=c0.lease_token, outcomes=[Outcome(c0.id, 2, error="x")])
    j = queries.get_job(db, job_id)
    assert (j["status"], j["failed"], j["cancelled"]) == ("cancelled", 1, 2)

    job2, ids2 = make_job(db, ["北京", "上海"])
    got = repo.claim(db, job_id=job2, doc_ids=ids2, lease_seconds=60, max_attempts=3)
    repo.save_outcomes(db, job_id=job2, lease_token=got[0].lease_token,
                       outcomes=[Outcome(got[0].id, 2), Outcome(got[1].id, 2, error="boom")])
    assert queries.get_job(db, job2)["status"] == "partially_failed"
    assert repo.retry_failed(db, job2) == 1
    j2 = queries.get_job(db, job2)
    assert (j2["status"], j2["failed"], j2["finished_at"]) == ("running", 0, None)
    (again,) = repo.claim(db, job_id=job2, doc_ids=ids2, lease_seconds=60, max_attempts=3)
    assert again.attempts == 1
    repo.save_outcomes(db, job_id=job2, lease_token=again.lease_token, outcomes=[Outcome(again.id, 2)])
    assert queries.get_job(db, job2)["status"] == "succeeded"


def test_queries_paginate_and_rank(db: Database) -> None:
    texts = ["北京和上海", "北京", "上海在北京"]
    job_id, ids = make_job(db, texts)
    claimed = repo.claim(db, job_id=job_id, doc_ids=ids, lease_seconds=60, max_attempts=3)
    outcomes = []
    for c in claimed:
        found = [e for w in ("北京", "上海") if w in c.text for e in ents(c.text, w)]
        outcomes.append(Outcome(c.id, c.n_chars, tuple(found)))
    repo.save_outcomes(db, job_id=job_id, lease_token=claimed[0].lease_token, outcomes=outcomes)
    seen, cursor = [], None
    while True:
        items, cursor = queries.find_entities(db, job_id, limit=2, cursor=cursor)
        seen.extend(items)
        if cursor is None:
            break
    assert len(seen) == 5 and len({(e["doc_id"], e["start"]) for e in seen}) == 5
    assert [e["doc_id"] for e in queries.find_entities(db, job_id, text="上海")[0]] == ["d0", "d2"]
    assert queries.find_entities(db, job_id, doc="d1")[0][0]["text"] == "北京"
    assert queries.top_entities(db, job_id) == [
        {"label": "LOC", "text": "北京", "count": 3}, {"label": "LOC", "text": "上海", "count": 2}]
    export = list(queries.iter_export(db, job_id, page=2))
    assert [r["doc_id"] for r in export] == ["d0", "d1", "d2"]
    for rec, text in zip(export, texts):
        assert all(text[e["start"]:e["end"]] == e["text"] for e in rec["entities"])
        assert rec["length"] == len(text) and rec["state"] == "done"


def test_nul_free_control_text_round_trips(db: Database) -> None:
    # PostgreSQL rejects NUL; validation turns controls into spaces before storage.
    from producer.validation import check_text

    checked = check_text("北\x00京\x1f", max_chars=100)
    job_id, _ = repo.create_job(db)
    repo.insert_documents(db, job_id, [{"ext_id": "n", "line": 1, "text": checked.text,
                                        "n_chars": len(checked.text), "status": checked.status}])
    assert queries.get_document(db, job_id, "n")["text"] == "北 京 "
