"""Incremental jobs: documents whose text, model, dictionary, fold and window settings match an
earlier done document reuse its entities (no worker); everything else is tagged; the rows are
those of a fresh run."""

from __future__ import annotations

from producer.dictionaries import create_dictionary
from producer.service import export_entities, job_options, job_status, rerun_job, submit_corpus
from storage.core.settings import Settings
from storage.sql import queries
from storage.sql.db import get_database
from tests.api.conftest import work

BASE = [{"id": f"d{i}", "text": f"第{i}条：张伟在北京见到王芳，复旦大学和中国银行也在。"} for i in range(20)]


def _rows(settings: Settings, job_id: str) -> dict[str, list[tuple]]:
    return {r["doc_id"]: [(e["start"], e["end"], e["label"], e["text"], e["score"], e["source"])
                          for e in r["entities"]] for r in export_entities(settings, job_id)}


def _pending(settings: Settings, job_id: str) -> int:
    return queries.count_by_status(get_database(settings), job_id).get("pending", 0)


def test_a_resubmit_reuses_unchanged_documents_and_matches_a_fresh_run(settings: Settings) -> None:
    first = submit_corpus(settings, BASE, options=job_options(settings)).job_id
    work(settings, first)
    # 10 % edited, 5 % added, one document failing in the first run
    changed = [dict(d) for d in BASE]
    changed[3]["text"] = "上海的李娜今天去了杭州。"
    changed[7]["text"] = "深圳和广州都在下雨。"
    changed.append({"id": "new", "text": "成都的陈静在阿里巴巴工作。"})
    result = submit_corpus(settings, changed, options=job_options(settings, incremental=True))
    assert result.reused == 18
    st = job_status(settings, result.job_id)
    assert (st["incremental"], st["reused"], st["done"], _pending(settings, result.job_id)) == (True, 18, 18, 3)
    work(settings, result.job_id)
    fresh = submit_corpus(settings, changed, options=job_options(settings)).job_id
    work(settings, fresh)
    assert job_status(settings, fresh)["reused"] == 0
    assert _rows(settings, result.job_id) == _rows(settings, fresh)
    assert job_status(settings, result.job_id)["state"] == "succeeded"


def test_all_reused_finishes_at_once_and_a_changed_recipe_reuses_nothing(settings: Settings) -> None:
    first = submit_corpus(settings, BASE[:5], options=job_options(settings)).job_id
    work(settings, first)
    again = submit_corpus(settings, BASE[:5], options=job_options(settings, incremental=True)).job_id
    assert job_status(settings, again)["state"] == "succeeded"  # no worker needed
    assert rerun_job(settings, first, options=job_options(settings, incremental=True)).reused == 5
    # Another fold, a dictionary, other window settings, or --force: every document is tagged again
    create_dictionary(settings, "d", "张伟\tPER\n")
    for options, with_settings in ((job_options(settings, incremental=True, fold=False), settings),
                                   (job_options(settings, incremental=True, dictionary="d"), settings),
                                   (job_options(settings, incremental=True), settings.replace(overlap=32)),
                                   (job_options(settings, incremental=False), settings)):
        assert submit_corpus(with_settings, BASE[:5], options=options).reused == 0


def test_failed_documents_are_never_reused(settings: Settings) -> None:
    docs = [{"id": "bad", "text": "张伟[[RAISE]]"}, {"id": "ok", "text": "张伟在北京。"}]
    first = submit_corpus(settings, docs, options=job_options(settings)).job_id
    work(settings, first)
    assert job_status(settings, first)["failed"] == 1
    again = submit_corpus(settings, docs, options=job_options(settings, incremental=True))
    assert again.reused == 1 and _pending(settings, again.job_id) == 1


def test_a_text_repeated_within_one_incremental_corpus_is_tagged_once(settings: Settings) -> None:
    from storage.sql import repo
    from worker.batch import run_batch

    db = get_database(settings)
    twin = "张伟在北京见到王芳。"
    docs = [{"id": "a1", "text": twin}, {"id": "b", "text": "上海的李娜今天去了杭州。"}, {"id": "a2", "text": twin},
            {"id": "a3", "text": twin}, {"id": "c", "text": "深圳和广州都在下雨。"}]
    job = submit_corpus(settings, docs, options=job_options(settings, incremental=True)).job_id
    plain = submit_corpus(settings, docs, options=job_options(settings)).job_id
    ids = {d: i for i, d in queries_ids(settings, job).items()}
    # Only the first copy of the text is handed out; a plain job hands out every document
    handed = [i for i, _ in repo.next_pending(db, job, limit=10)]
    assert handed == [ids["a1"], ids["b"], ids["c"]]
    assert len(repo.next_pending(db, plain, limit=10)) == 5
    run_batch(settings, job_id=job, doc_ids=handed, topup=False)
    # Then its copies are done, reused, with its entities; the job is finished with nothing tagged twice
    st = job_status(settings, job)
    assert (st["state"], st["done"], st["reused"], _pending(settings, job)) == ("succeeded", 5, 2, 0)
    rows = _rows(settings, job)
    assert rows["a2"] == rows["a3"] == rows["a1"] and rows["a1"]
    work(settings, plain)
    assert _rows(settings, plain) == rows  # the same rows as tagging every copy


def test_when_the_first_copy_fails_the_next_one_is_tagged(settings: Settings) -> None:
    from storage.sql import repo
    from worker.batch import run_batch

    db = get_database(settings)
    docs = [{"id": "a1", "text": "[[RAISE]]同一段"}, {"id": "a2", "text": "[[RAISE]]同一段"},
            {"id": "a3", "text": "[[RAISE]]同一段"}]
    job = submit_corpus(settings, docs, options=job_options(settings, incremental=True)).job_id
    ids = {d: i for i, d in queries_ids(settings, job).items()}
    assert [i for i, _ in repo.next_pending(db, job, limit=10)] == [ids["a1"]]
    for _ in range(5):  # attempts until it fails for good
        run_batch(settings, job_id=job, doc_ids=[ids["a1"]], topup=False)
    assert queries.count_by_status(db, job).get("failed") == 1
    assert [i for i, _ in repo.next_pending(db, job, limit=10)] == [ids["a2"]]  # a failed copy is no donor


def queries_ids(settings: Settings, job_id: str) -> dict[int, str]:
    from sqlalchemy import select

    from storage.sql.schema import document

    with get_database(settings).read() as conn:
        return {int(r.id): r.ext_id for r in conn.execute(select(document.c.id, document.c.ext_id)
                                                          .where(document.c.job_id == job_id))}
