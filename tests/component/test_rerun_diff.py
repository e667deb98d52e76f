"""Rerun (a new job over stored documents) and diff (entities only in A, only in B, changed type)
on hand-made results, on SQLite and PostgreSQL; diff_spans property-tested."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from producer.service import JobOptions, diff_jobs, job_status, rerun_job, submit_corpus
from storage.sql import queries, repo
from storage.sql.db import Database, get_database
from storage.sql.diff import NotComparable, diff_spans
from storage.core.domain import Entity, Outcome
from storage.core.settings import Settings
from storage.core.views import SpanView

TEXTS = {"d1": "张伟在北京的清华大学读书。", "d2": "王芳去了上海。", "d3": "没有实体的一句话。"}
BAD = "\ud800"  # rejected at ingest


def _finish(db: Database, job_id: str, found: dict[str, list[tuple[str, str]]]) -> None:
    """Claim every pending document of the job and save the given (word, label) entities."""
    pending = repo.next_pending(db, job_id, limit=100)
    claimed = repo.claim(db, job_id=job_id, doc_ids=[i for i, _ in pending], lease_seconds=60, max_attempts=3)
    outcomes = []
    for doc in claimed:
        ents = []
        for word, label in found.get(doc.ext_id, []):
            start = doc.text.index(word)
            ents.append(Entity(start, start + len(word), label, word, 0.9))
        outcomes.append(Outcome(doc.id, doc.n_chars, tuple(ents)))
    repo.save_outcomes(db, job_id=job_id, lease_token=claimed[0].lease_token, outcomes=outcomes)


def _submit(settings: Settings, texts: dict[str, str], model: str = "a") -> str:
    docs = [{"id": k, "text": v} for k, v in texts.items()]
    return submit_corpus(settings, docs, options=JobOptions(model, "hash-" + model)).job_id


def test_rerun_copies_the_stored_documents_and_diff_lists_every_difference(settings: Settings) -> None:
    db = get_database(settings)
    a = _submit(settings, {**TEXTS, "bad": BAD})
    _finish(db, a, {"d1": [("张伟", "PER"), ("北京", "LOC"), ("清华大学", "ORG")], "d2": [("上海", "LOC")]})
    rerun = rerun_job(settings, a, options=JobOptions("b", "hash-b", priority=2))
    assert (rerun.documents, rerun.rejected) == (4, 1)
    b = rerun.job_id
    # The same documents, ids and texts; bad input stays rejected with its reason, the rest pending
    assert {k: n for k, n in queries.count_by_status(db, b).items() if n} == {"pending": 3, "failed": 1}
    status = job_status(settings, b)
    assert (status["model"], status["model_hash"], status["priority"], status["rerun_of"]) == ("b", "hash-b", 2, a)
    running = diff_jobs(settings, a, b)  # B untagged yet: everything of A shows, and the view says so
    assert not running["complete"] and running["counts"]["only_a"] == 4
    _finish(db, b, {"d1": [("张伟", "PER"), ("北京", "ORG")], "d2": [("王芳", "PER"), ("上海", "LOC")]})

    d = diff_jobs(settings, a, b)
    assert (d["model_a"], d["model_b"], d["documents"]) == ("a", "b", 4)
    assert [(e["doc_id"], e["text"], e["label"]) for e in d["only_a"]] == [("d1", "清华大学", "ORG")]
    assert [(e["doc_id"], e["text"], e["label"]) for e in d["only_b"]] == [("d2", "王芳", "PER")]
    assert [(e["doc_id"], e["text"], e["label"], e["label_b"]) for e in d["changed"]] == [("d1", "北京", "LOC", "ORG")]
    assert d["counts"] == {"only_a": 1, "only_b": 1, "changed": 1}
    assert d["by_label"] == {"LOC": {"only_a": 0, "only_b": 0, "changed": 1},
                             "ORG": {"only_a": 1, "only_b": 0, "changed": 0},
                             "PER": {"only_a": 0, "only_b": 1, "changed": 0}}
    assert not d["truncated"] and d["complete"]
    # Reversed, the roles swap; limited, the lists stop but the counts do not
    rev = diff_jobs(settings, b, a, limit=0)
    assert rev["counts"] == {"only_a": 1, "only_b": 1, "changed": 1} and rev["truncated"]
    assert rev["only_a"] == rev["only_b"] == rev["changed"] == []
    # A job against itself: no difference
    assert diff_jobs(settings, a, a)["counts"] == {"only_a": 0, "only_b": 0, "changed": 0}


def test_diff_refuses_jobs_over_different_documents(settings: Settings) -> None:
    a = _submit(settings, TEXTS)
    other_ids = _submit(settings, {"x1": TEXTS["d1"], "d2": TEXTS["d2"], "d3": TEXTS["d3"]})
    other_text = _submit(settings, {**TEXTS, "d3": "另一句话。"})
    fewer = _submit(settings, {"d1": TEXTS["d1"]})
    for b in (other_ids, other_text, fewer):
        with pytest.raises(NotComparable, match="do not hold the same documents"):
            diff_jobs(settings, a, b)


def test_rerun_of_an_unknown_job_is_not_found(settings: Settings) -> None:
    from storage.core.errors import NotFound

    with pytest.raises(NotFound):
        rerun_job(settings, "0" * 32, options=JobOptions("a", "hash-a"))


labels = st.sampled_from(["PER", "LOC", "ORG"])
spans = st.lists(st.tuples(st.integers(0, 6), st.integers(1, 3), labels), max_size=8)


def _views(items: list[tuple[int, int, str]]) -> list[SpanView]:
    uniq = {(s, s + n, lab) for s, n, lab in items}
    return [{"start": s, "end": e, "label": lab, "text": "x" * (e - s), "score": 1.0} for s, e, lab in sorted(uniq)]


@given(spans, spans)
def test_diff_spans_accounts_for_every_entity_exactly_once(xa: list[tuple[int, int, str]],
                                                           xb: list[tuple[int, int, str]]) -> None:
    a, b = _views(xa), _views(xb)
    only_a, only_b, changed = diff_spans(a, b)
    key = lambda e: (e["start"], e["end"], e["label"])  # noqa: E731
    sa, sb = {key(e) for e in a}, {key(e) for e in b}
    # Every entity of A is shared with B, only in A, or the A side of a change; likewise for B
    assert {key(e) for e in only_a} | {key(x) for x, _ in changed} == sa - sb
    assert {key(e) for e in only_b} | {key(y) for _, y in changed} == sb - sa
    for x, y in changed:
        assert (x["start"], x["end"]) == (y["start"], y["end"]) and x["label"] != y["label"]
    assert diff_spans(a, a) == ([], [], [])
    # Symmetric: swapping A and B swaps the lists
    assert diff_spans(b, a) == (only_b, only_a, [(y, x) for x, y in changed])
